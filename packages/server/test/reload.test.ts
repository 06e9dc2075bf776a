import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer, type ServerConfigInput } from '../src/index.js';
import { spawnServer } from './cli-helpers.js';

const upstreamKey = fakeKey('upstream');
const JSON_POST = { 'content-type': 'application/json' };

const status = (base: string, key: string) =>
  new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 }).chat.completions
    .create({ model: 'gpt-4o-mini', messages: [] })
    .then(
      () => 200,
      (e) => e.status as number,
    );

describe('reload applies every run-time setting, all or nothing', () => {
  let up: FakeUpstream;
  let server: LbServer;
  let config: ServerConfigInput;
  const oldKey = 'client-key-old-0001';
  const newKey = 'client-key-new-0002';
  const configWith = (server: ServerConfigInput['server']): ServerConfigInput => ({
    router: { endpoints: [{ id: 'e', url: up.url, apiKey: upstreamKey }] },
    server: { port: 0, adminKey: 'admin-key-old-0001', ...server },
    breaker: { enabled: true, threshold: 5 },
  });

  beforeAll(async () => {
    up = await startFakeUpstream({ name: 'up' });
    config = configWith({ apiKeys: [oldKey] });
    server = createServer({
      ...config,
      logDestination: { write: () => true } as any,
      reloadConfig: () => config,
    });
    await server.listen();
  });
  afterAll(async () => {
    await server.close(100);
    await up.close();
  });

  it('a removed key stops working, an added key works, a new admin key and body limit apply; port needs a restart', async () => {
    expect(await status(server.url!, oldKey)).toBe(200);
    expect(await status(server.url!, newKey)).toBe(401);
    config = configWith({
      apiKeys: [newKey],
      adminKey: 'admin-key-new-0002',
      bodyLimitBytes: 1000,
      timeoutMs: 5000,
      clientRateLimit: { enabled: true, requests: 2, windowMs: 60_000 },
      port: 1, // a listener's port cannot change while it listens
    });
    config.breaker = { enabled: true, threshold: 2 };
    const res = await fetch(`${server.url}/admin/reload`, {
      method: 'POST',
      headers: { ...JSON_POST, 'x-admin-key': 'admin-key-old-0001' },
    });
    expect(res.status).toBe(200);
    const report = await res.json();
    expect(report.reloaded).toBe(true);
    expect(report.applied).toEqual(
      expect.arrayContaining([
        'apiKeys',
        'adminKey',
        'bodyLimitBytes',
        'timeoutMs',
        'clientRateLimit',
        'breaker',
      ]),
    );
    expect(report.restartRequired).toEqual(['port']);
    expect(JSON.stringify(report)).not.toContain(newKey);
    expect(server.settings.port).toBe(0);
    expect(server.settings.timeoutMs).toBe(5000);

    expect(await status(server.url!, oldKey)).toBe(401);
    const big = await fetch(`${server.url}/v1/embeddings`, {
      method: 'POST',
      headers: { ...JSON_POST, authorization: `Bearer ${newKey}` },
      body: JSON.stringify({ model: 'text-embedding-3-small', input: 'x'.repeat(2000) }),
    });
    expect(big.status).toBe(413);
    // the new client limit: 2 per window (the 413 was one of them)
    expect([await status(server.url!, newKey), await status(server.url!, newKey)]).toEqual([200, 429]);
    const admin = (key: string) =>
      fetch(`${server.url}/admin/endpoints`, { headers: { 'x-admin-key': key } }).then((r) => r.status);
    expect(await admin('admin-key-old-0001')).toBe(401);
    expect(await admin('admin-key-new-0002')).toBe(200);
  });

  it('a config with no server section keeps the running keys (it never opens the gateway)', async () => {
    const keysBefore = server.settings.apiKeys;
    const report = await server.reload({
      router: { endpoints: [{ id: 'e', url: up.url, apiKey: upstreamKey }] },
    });
    expect(report.applied).toEqual([]);
    expect(server.settings.apiKeys).toBe(keysBefore);
    expect(await status(server.url!, 'anything-at-all-0001')).toBe(401);
  });

  it('an invalid config changes nothing', async () => {
    const before = server.settings;
    config = configWith({ apiKeys: [oldKey], adminKey: 'admin-key-new-0002', timeoutMs: -1 });
    const res = await fetch(`${server.url}/admin/reload`, {
      method: 'POST',
      headers: { ...JSON_POST, 'x-admin-key': 'admin-key-new-0002' },
    });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toContain('timeoutMs');
    expect(server.settings).toBe(before);
    expect(await status(server.url!, oldKey)).toBe(401);
  });
});

describe('SIGHUP re-reads keys from the config file (CLI)', () => {
  let up: FakeUpstream;
  beforeAll(async () => {
    up = await startFakeUpstream({ name: 'up' });
  });
  afterAll(() => up.close());

  it('a key removed from the file is refused after SIGHUP; the log names what needs a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-reload-'));
    const file = join(dir, 'lb.json');
    const write = (keys: string[], port: number) =>
      writeFileSync(
        file,
        JSON.stringify({
          endpoints: [{ name: 'up', base_url: up.url, api_key: upstreamKey }],
          server: { api_keys: keys, port, body_limit: 100_000 },
        }),
      );
    write(['key-alice-000001', 'key-bobby-000002'], 0);
    const p = await spawnServer({}, ['--config', file]);
    try {
      expect(await status(p.url, 'key-alice-000001')).toBe(200);
      write(['key-bobby-000002'], 65_000);
      p.child.kill('SIGHUP');
      // The CLI's own line (the log's "configuration reloaded" may come first, from the router's event).
      await expect.poll(() => p.out(), { timeout: 10_000 }).toMatch(/lb-server: reloaded/);
      expect(p.out()).toMatch(/settings applied: apiKeys/);
      expect(p.out()).toMatch(/needs a restart to change: port/);
      expect(p.out()).not.toContain('key-bobby-000002');
      expect(await status(p.url, 'key-alice-000001')).toBe(401);
      expect(await status(p.url, 'key-bobby-000002')).toBe(200);
    } finally {
      p.child.kill('SIGKILL');
    }
  });
});
