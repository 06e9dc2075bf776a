import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const here = join(import.meta.dirname, '..');
const cli = join(here, '..', 'packages', 'server', 'dist', 'cli.js');

describe('soak (short)', () => {
  it('drives plain, streaming and failed-over requests through lb-server and reads its RSS after each slice', {
    timeout: 60_000,
  }, async () => {
    expect(existsSync(cli), 'packages/server/dist/cli.js: build first (pnpm build)').toBe(true);
    const out = mkdtempSync(join(tmpdir(), 'lb-soak-'));
    const { stdout } = await run(
      process.execPath,
      [join(here, 'run.mjs'), '--short', '--only=soak', `--out=${out}`],
      {
        timeout: 55_000,
      },
    );
    expect(stdout).toContain('# Soak');
    const r = JSON.parse(readFileSync(join(out, 'soak-short.json'), 'utf8'));
    expect(r.slices.length).toBeGreaterThanOrEqual(4);
    expect(r.slices.map((s: { stream: boolean }) => s.stream).slice(0, 2)).toEqual([false, true]);
    expect(r.requests).toBe(r.slices.at(-1).requests);
    expect(r.requests).toBeGreaterThanOrEqual(2_000);
    // One endpoint in three answers 500: every such attempt fails over, and the client never sees it.
    expect(r.non2xx).toBe(0);
    for (const s of r.slices) expect(s.rssMB).toBeGreaterThan(0);
    expect(r.afterIdleMB).toBeGreaterThan(0);
    expect(Number.isFinite(r.growthSecondHalfMBPer100k)).toBe(true);
  });
});
