import { gzipSync } from 'node:zlib';
import { type FakeUpstream, fakeKey, startFakeUpstream, startRedis } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

let a: FakeUpstream;
let b: FakeUpstream;
let server: LbServer;
let base: string;
let client: OpenAI;
const adminKey = 'lb-admin-key-dashboard-0123456789';
const clientKey = 'lb-client-key-dashboard-0123456789';
const upstreamKey = fakeKey('a');

/** Reads /dashboard/events with the admin key; frames accumulate; `until` waits for one that matches. */
async function watch(key: string | null = adminKey) {
  const ctl = new AbortController();
  const res = await fetch(`${base}/dashboard/events`, {
    headers: key ? { 'x-admin-key': key } : {},
    signal: ctl.signal,
  });
  const frames: any[] = [];
  let raw = '';
  const waiters: { pred: (f: any) => boolean; resolve: (f: any) => void }[] = [];
  const pump = async () => {
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const r = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (r.done) return;
      const text = dec.decode(r.value, { stream: true });
      raw += text;
      buf += text;
      let i = buf.indexOf('\n\n');
      while (i >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (block.startsWith('data: ')) {
          const f = JSON.parse(block.slice(6));
          frames.push(f);
          for (const w of waiters.splice(0)) {
            if (w.pred(f)) w.resolve(f);
            else waiters.push(w);
          }
        }
        i = buf.indexOf('\n\n');
      }
    }
  };
  if (res.ok) void pump();
  return {
    res,
    frames,
    raw: () => raw,
    until(pred: (f: any) => boolean): Promise<any> {
      const hit = frames.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    close: () => ctl.abort(),
  };
}

beforeAll(async () => {
  [a, b] = await Promise.all([startFakeUpstream({ name: 'a' }), startFakeUpstream({ name: 'b' })]);
  const router = {
    endpoints: [
      { id: 'a', url: a.url, apiKey: upstreamKey, priority: 1, tags: ['eu'], models: ['gpt-4o-mini'] },
      { id: 'b', url: b.url, apiKey: fakeKey('b'), priority: 2, limits: { rps: 1000 } },
    ],
    backoff: { initialMs: 1, maxMs: 2 },
  };
  server = createServer({
    router,
    reloadConfig: () => router,
    server: { port: 0, adminKey, apiKeys: [clientKey] },
    breaker: { enabled: true, threshold: 2, halfOpenAfterMs: 60_000 },
    logDestination: { write: () => true } as any,
  });
  base = await server.listen();
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: clientKey, maxRetries: 0 });
});

afterAll(async () => {
  await server.close(100);
  await Promise.all([a.close(), b.close()]);
});

const ask = () =>
  client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });

describe('GET /dashboard', () => {
  it('serves one self-contained page under 50 KB gzipped, with a strict CSP and nothing fetched elsewhere', async () => {
    const res = await fetch(`${base}/dashboard`);
    // The page carries no data: without the key it is the form that asks for it.
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/script-src 'sha256-/);
    const html = await res.text();
    expect(html).toContain('id="login"');
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/@import|@font-face|<link (?!rel="icon" href="data:,")/);
    const gz = gzipSync(html).length;
    expect(gz).toBeLessThan(50 * 1024);
    expect(html).toContain('<caption>');
    expect(html).toMatch(/prefers-color-scheme:dark/);
  });

  it('refuses the event stream without the admin key, as the admin routes do', async () => {
    for (const key of [null, 'wrong-key-0123456789abcdef', clientKey]) {
      const w = await watch(key);
      expect(w.res.status).toBe(401);
      const body = await w.res.text();
      expect(body).not.toContain(adminKey);
      const admin = await fetch(`${base}/admin/endpoints`, { headers: key ? { 'x-admin-key': key } : {} });
      expect(admin.status).toBe(w.res.status);
    }
    expect((await fetch(`${base}/dashboard/events`, { method: 'POST' })).status).toBe(405);
  });
});

describe('GET /dashboard/events', () => {
  it('subscribes to the bus only while a dashboard is connected', async () => {
    const before = server.router.listenerCount('attempt:start');
    const w = await watch();
    expect(w.res.status).toBe(200);
    await w.until((f) => f.full);
    expect(server.router.listenerCount('attempt:start')).toBe(before + 1);
    const w2 = await watch();
    await w2.until((f) => f.full);
    expect(server.router.listenerCount('attempt:start')).toBe(before + 1);
    w.close();
    w2.close();
    await new Promise<void>((resolve) => {
      const check = () =>
        server.router.listenerCount('attempt:start') === before ? resolve() : setImmediate(check);
      check();
    });
  });

  it('streams the endpoint table, requests, tokens and failovers in batched frames, never a key', async () => {
    const w = await watch();
    const first = await w.until((f) => f.full);
    expect(first.endpoints.map((e: any) => e.id)).toEqual(['a', 'b']);
    const ea = first.endpoints[0];
    expect(ea).toMatchObject({ display: 'healthy', tags: ['eu'], models: ['gpt-4o-mini'], inFlight: 0 });
    expect(first.endpoints[1].budget).toBeDefined();

    for (let i = 0; i < 3; i++) expect((await ask()).system_fingerprint).toBe('a');
    const withReqs = await w.until((f) => w.frames.flatMap((x: any) => x.requests).length >= 3 && !f.full);
    const reqs = w.frames.flatMap((x: any) => x.requests);
    expect(reqs[0]).toMatchObject({ model: 'gpt-4o-mini', endpoint: 'a', status: 200, attempts: 1 });
    expect(reqs[0].tokens).toBeGreaterThan(0);
    expect(withReqs.tokens.byModel['gpt-4o-mini']).toBeGreaterThan(0);
    expect(Object.keys(withReqs.tokens.byKey)).toHaveLength(1);

    // a fails twice: its breaker opens and the row says so; the strip shows the failover and the transition.
    a.next({ type: 'status', status: 500 }, { type: 'status', status: 502 });
    expect((await ask()).system_fingerprint).toBe('b');
    expect((await ask()).system_fingerprint).toBe('b');
    const open = await w.until((f) => f.endpoints[0].display === 'open');
    expect(open.endpoints[0].breaker).toBe('open');
    const events = w.frames.flatMap((x: any) => x.events);
    expect(events.some((e: any) => e.kind === 'failover' && e.endpointId === 'a')).toBe(true);
    expect(events.some((e: any) => e.kind === 'breaker' && /open/.test(e.text))).toBe(true);
    const rows = await w.until((f) => f.endpoints[0].errors.server >= 2);
    expect(rows.endpoints[0].errorRate).toBeGreaterThan(0);
    expect(rows.endpoints[1].p50).toBeGreaterThan(0);
    expect(rows.endpoints[1].ttfbP50).toBeGreaterThan(0);

    for (const secret of [adminKey, clientKey, upstreamKey]) expect(w.raw()).not.toContain(secret);
    w.close();
  });

  it('shows a disable and a reload from the admin routes in the strip', async () => {
    const w = await watch();
    await w.until((f) => f.full);
    const auth = { 'x-admin-key': adminKey, 'content-type': 'application/json' };
    expect((await fetch(`${base}/admin/endpoints/b/disable`, { method: 'POST', headers: auth })).status).toBe(
      200,
    );
    const f = await w.until((x) => x.endpoints.find((e: any) => e.id === 'b').display === 'disabled');
    expect(f.endpoints[1].state).toBe('disabled');
    await w.until((x) => x.events.some((e: any) => e.kind === 'override' && e.endpointId === 'b'));
    expect((await fetch(`${base}/admin/endpoints/b/enable`, { method: 'POST', headers: auth })).status).toBe(
      200,
    );
    const res = await fetch(`${base}/admin/reload`, { method: 'POST', headers: auth });
    expect(await res.json()).toMatchObject({ reloaded: true, removed: [] });
    await w.until((x) => x.events.some((e: any) => e.kind === 'reload'));
    w.close();
  });

  it("shows the shared store's state when Redis is configured", async () => {
    const redis = await startRedis();
    const up = await startFakeUpstream({ name: 'r' });
    const s = createServer({
      router: { endpoints: [{ id: 'r', url: up.url, apiKey: fakeKey('r') }] },
      server: { port: 0, adminKey, redisUrl: redis.url },
      logDestination: { write: () => true } as any,
    });
    try {
      const url = await s.listen();
      const res = await fetch(`${url}/dashboard/events`, { headers: { 'x-admin-key': adminKey } });
      const reader = res.body!.getReader();
      const first = JSON.parse(new TextDecoder().decode((await reader.read()).value).slice(6));
      expect(first.store).toMatchObject({ kind: 'redis', status: 'up', errors: 0 });
      expect(JSON.stringify(first)).not.toContain(redis.url);
      await reader.cancel();
    } finally {
      await s.close(100);
      await Promise.all([up.close(), redis.stop()]);
    }
  });

  it('ends its streams on close, so a graceful shutdown does not wait on them', async () => {
    const up = await startFakeUpstream({ name: 'c' });
    const s = createServer({
      router: { endpoints: [{ id: 'c', url: up.url, apiKey: fakeKey('c') }] },
      server: { port: 0, adminKey },
      logDestination: { write: () => true } as any,
    });
    const url = await s.listen();
    const res = await fetch(`${url}/dashboard/events`, { headers: { authorization: `Bearer ${adminKey}` } });
    expect(res.status).toBe(200);
    const text = res.text();
    const closed = await s.close(60_000);
    expect(closed).toEqual({ drained: true, cut: 0 });
    expect(await text).toContain('"full":true');
    await up.close();
  });
});
