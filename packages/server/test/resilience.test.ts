import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

let a: FakeUpstream;
let b: FakeUpstream;
let server: LbServer;
let client: OpenAI;
let base: string;

beforeAll(async () => {
  [a, b] = await Promise.all([startFakeUpstream({ name: 'a' }), startFakeUpstream({ name: 'b' })]);
  server = createServer({
    router: {
      endpoints: [
        { id: 'a', url: a.url, apiKey: fakeKey('a'), priority: 1 },
        { id: 'b', url: b.url, apiKey: fakeKey('b'), priority: 2 },
      ],
      backoff: { initialMs: 1, maxMs: 2 },
    },
    server: { port: 0 },
    breaker: { enabled: true, threshold: 2, halfOpenAfterMs: 60_000 },
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

describe('circuit breaker through the proxy', () => {
  it('opens after the threshold, keeps traffic off the endpoint and shows it on /health', async () => {
    a.next({ type: 'status', status: 500 }, { type: 'status', status: 502 });
    expect((await ask()).system_fingerprint).toBe('b');
    expect((await ask()).system_fingerprint).toBe('b');
    const seen = a.count();
    for (let i = 0; i < 3; i++) expect((await ask()).system_fingerprint).toBe('b');
    expect(a.count()).toBe(seen);
    const health = await (await fetch(`${base}/health`)).json();
    const ea = health.endpoints.find((e: { id: string }) => e.id === 'a');
    expect(JSON.stringify(ea)).toMatch(/open/);
    expect(health.status).toBe('degraded');
  });
});

describe('per-endpoint rate limits', () => {
  it('holds an endpoint to its requests-per-second cap and spills over to the next', async () => {
    const [x, y] = await Promise.all([startFakeUpstream({ name: 'x' }), startFakeUpstream({ name: 'y' })]);
    const s = createServer({
      router: {
        endpoints: [
          { id: 'x', url: x.url, apiKey: fakeKey('x'), priority: 1, limits: { rps: 2 } },
          { id: 'y', url: y.url, apiKey: fakeKey('y'), priority: 2 },
        ],
      },
      server: { port: 0 },
      logDestination: { write: () => true } as any,
    });
    try {
      const c = new OpenAI({ baseURL: `${await s.listen()}/v1`, apiKey: 'x', maxRetries: 0 });
      const served = await Promise.all(
        Array.from({ length: 6 }, () =>
          c.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }).then(() => 1),
        ),
      );
      expect(served).toHaveLength(6);
      expect(x.count('/embeddings')).toBe(2);
      expect(y.count('/embeddings')).toBe(4);
    } finally {
      await s.close(100);
      await Promise.all([x.close(), y.close()]);
    }
  });
});
