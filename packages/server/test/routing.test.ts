import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

let a: FakeUpstream;
let b: FakeUpstream;
let server: LbServer;
let client: OpenAI;
let base: string;
const ka = fakeKey('a');
const kb = fakeKey('b');

beforeAll(async () => {
  [a, b] = await Promise.all([
    startFakeUpstream({ name: 'a', acceptKeys: [ka] }),
    startFakeUpstream({ name: 'b', acceptKeys: [kb] }),
  ]);
  server = createServer({
    router: {
      endpoints: [
        { id: 'a', url: a.url, apiKey: ka, priority: 1, models: ['gpt-4o-mini', 'gpt-4o'] },
        { id: 'b', url: b.url, apiKey: kb, priority: 2, models: ['gpt-4o-mini', 'gpt-4o'] },
      ],
      models: { fast: { backends: [{ endpoint: 'b', model: 'gpt-4o-mini' }] } },
      backoff: { initialMs: 1, maxMs: 2 },
    },
    server: { port: 0 },
    breaker: { enabled: false },
    logDestination: { write: () => true } as any,
  });
  base = await server.listen();
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'x', maxRetries: 0 });
});

afterAll(async () => {
  await server.close(100);
  await Promise.all([a.close(), b.close()]);
});

const ask = () =>
  client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });

describe('routing through the proxy', () => {
  it('cools an endpoint down for its Retry-After after a 429', async () => {
    a.next({ type: 'status', status: 429, headers: { 'retry-after': '30' } });
    expect((await ask()).system_fingerprint).toBe('b');
    const before = a.count();
    expect((await ask()).system_fingerprint).toBe('b');
    expect(a.count()).toBe(before);
    const h = server.router.getHealth('a')!;
    expect(h.status).toBe('cooling');
    server.router.setEndpointHealth('a', true);
  });

  it('retires a key the upstream rejects with 401 and serves from the next', async () => {
    a.setAcceptKeys(['another-key-entirely-000000']);
    expect((await ask()).system_fingerprint).toBe('b');
    a.setAcceptKeys([ka]);
    expect((await ask()).system_fingerprint).toBe('b');
    expect(server.router.getHealth('a')!.status).toBe('unhealthy');
    server.router.setEndpointHealth('a', true);
    expect((await ask()).system_fingerprint).toBe('a');
  });

  it('routes model groups to their backends with the mapped model', async () => {
    const r = await client.chat.completions.create({
      model: 'fast',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.system_fingerprint).toBe('b');
    expect(b.requests.at(-1)!.json.model).toBe('gpt-4o-mini');
  });

  it('lists the exposed models and 404s an unknown model in OpenAI shape', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id).sort()).toEqual(['fast', 'gpt-4o', 'gpt-4o-mini']);
    const err = await client.chat.completions
      .create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.code).toBe('model_not_found');
  });

  it('answers 429 with Retry-After when every endpoint is rate limited', async () => {
    a.next({ type: 'status', status: 429, headers: { 'retry-after': '40' } });
    b.next({ type: 'status', status: 429, headers: { 'retry-after': '20' } });
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }),
    });
    expect(res.status).toBe(429);
    const ra = Number(res.headers.get('retry-after'));
    expect(ra).toBeGreaterThanOrEqual(19);
    expect(ra).toBeLessThanOrEqual(20);
    expect((await res.json()).error.code).toBe('rate_limit_exceeded');
    server.router.setEndpointHealth('a', true);
    server.router.setEndpointHealth('b', true);
  });

  it('forwards other /v1 routes (files, batches, unknown) with the endpoint key', async () => {
    const files = await client.files.list();
    expect(files.data).toEqual([]);
    const res = await fetch(`${base}/v1/some/new/route?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(res.status).toBe(200);
    expect((await res.json()).path).toBe('/some/new/route');
    expect(a.requests.at(-1)!.url).toBe('/v1/some/new/route?x=1');
    expect(a.requests.at(-1)!.headers.authorization).toBe(`Bearer ${ka}`);
  });

  it('cancels the upstream request when the client goes away', async () => {
    a.next({ type: 'stream', chunks: ['a', 'b', 'c', 'd', 'e', 'f'], intervalMs: 100 });
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'x' }] },
      { signal: ac.signal },
    );
    const abortedBefore = a.aborted;
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    ac.abort();
    await expect.poll(() => a.aborted, { timeout: 2000 }).toBeGreaterThan(abortedBefore);
    await expect.poll(() => server.inFlight, { timeout: 2000 }).toBe(0);
  });
});
