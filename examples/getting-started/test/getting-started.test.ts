import fs from 'node:fs';
import path from 'node:path';
import { deadAndLive, runNode } from '@lb/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const dir = path.resolve(__dirname, '..');
const root = path.resolve(dir, '../..');
let ups: Awaited<ReturnType<typeof deadAndLive>>;
beforeAll(async () => {
  ups = await deadAndLive();
});
afterAll(() => ups.close());

describe('the getting-started code, run as the docs show it (the primary endpoint dead)', () => {
  it('selector.mjs: fails over, then ejects the dead endpoint after 5 failures; keys masked', async () => {
    const r = await runNode(dir, 'selector.mjs', ups.env);
    expect(r.code).toBe(0);
    expect(r.out).toContain('attempt 1 on primary: server 500');
    expect(r.out).toMatch(/primary: healthy → unhealthy \(outlier: 5 consecutive failures/);
    expect(r.out).toContain('request 6: 200 Hello from live');
    expect(r.out).toContain('primary: unhealthy, key sk-proj...N0IA');
    expect(r.out).not.toContain(ups.env.OPENAI_API_KEY);
  });

  it('client.mjs: the drop-in client fails over, JSON and stream', async () => {
    const r = await runNode(dir, 'client.mjs', ups.env);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Hello from live (from backup)');
    expect(r.out).toMatch(/streamed: \S/);
  });

  it('server-library.mjs: createServer(loadConfig()) from the environment', async () => {
    const r = await runNode(dir, 'server-library.mjs', {
      OPENAI_API_KEY: ups.env.BACKUP_API_KEY,
      OPENAI_BASE_URL: ups.live.url,
      PORT: '0',
      LOG_LEVEL: 'error',
    });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(r.out).toContain('Hello from live (from openai-primary)');
  });
});

describe('docs/ quote runnable code only from tested files', () => {
  const pages = fs
    .readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => ({ f, text: fs.readFileSync(path.join(root, 'docs', f), 'utf8') }));

  it('every JavaScript/TypeScript block is an included file, quoted exactly', () => {
    let included = 0;
    for (const { f, text } of pages) {
      const blocks = [...text.matchAll(/(<!-- include: (\S+) -->\n)?```(\w+)\n([\s\S]*?)```/g)];
      for (const [, , file, lang, code] of blocks) {
        if (!['js', 'ts', 'mjs', 'javascript', 'typescript'].includes(lang)) continue;
        expect(file, `${f}: a ${lang} block without <!-- include: path -->`).toBeDefined();
        expect(code, `${f}: ${file} differs from the file (run node scripts/docs-include.mjs)`).toBe(
          fs.readFileSync(path.join(root, file), 'utf8'),
        );
        included++;
      }
    }
    expect(included).toBeGreaterThanOrEqual(3);
  });

  it('every relative link points at a file that exists', () => {
    for (const { f, text } of pages) {
      for (const [, target] of text.matchAll(/\]\((?!https?:|#)([^)#\s]+)/g)) {
        expect(fs.existsSync(path.join(root, 'docs', target)), `${f} → ${target}`).toBe(true);
      }
    }
  });
});
