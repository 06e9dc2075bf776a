import { type FakeUpstream, fakeKey, startFakeUpstream, startRedis, type TestRedis } from '@lb/test-utils';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// Two lb-server replicas sharing one real redis-server (`server.redisUrl`, env LB_REDIS_URL): per-client windows and
// endpoint budgets are shared; a Redis that is away never fails a request.
const upstreamKey = fakeKey('shared-upstream');
const clientKey = 'lb-client-key-shared-0123456789';
const logs: string[] = [];

let redis: TestRedis;
let up: FakeUpstream;
const servers: LbServer[] = [];

async function replica(redisUrl: string, extra: { rpm?: number; perClient?: number } = {}): Promise<OpenAI> {
  const server = createServer({
    router: {
      endpoints: [
        { id: 'up', url: up.url, apiKey: upstreamKey, ...(extra.rpm ? { limits: { rpm: extra.rpm } } : {}) },
      ],
      maxWaitMs: 0,
    },
    server: {
      port: 0,
      apiKeys: [clientKey],
      clientRateLimit: { enabled: true, requests: extra.perClient ?? 2, windowMs: 60_000 },
      redisUrl,
      logLevel: 'warn',
    },
    logDestination: { write: (s: string) => logs.push(s) > 0 } as never,
  });
  servers.push(server);
  const base = await server.listen();
  return new OpenAI({ baseURL: `${base}/v1`, apiKey: clientKey, maxRetries: 0 });
}

/** `/health`'s view of the shared store. */
async function sharedStoreOf(c: OpenAI): Promise<unknown> {
  const res = await fetch(c.baseURL.replace(/\/v1$/, '/health'));
  const text = await res.text();
  expect(text).not.toContain('redis://');
  return JSON.parse(text).sharedStore;
}

const ask = (c: OpenAI) =>
  c.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }).then(
    () => 200,
    (e: { status?: number }) => e.status ?? 0,
  );
const settle = () => new Promise((r) => setTimeout(r, 60));

/** Polls `cond` every 20 ms for up to 5 s (loaded CI machines are slow to connect). */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`condition not met within 5 s: ${cond}`);
}

beforeAll(async () => {
  redis = await startRedis();
  up = await startFakeUpstream({ name: 'up', acceptKeys: [upstreamKey] });
});

afterAll(async () => {
  for (const s of servers) await s.close(100);
  await up?.close();
  await redis?.stop();
});

describe('replicas sharing rate-limit state in Redis', () => {
  /**
   * Replica one spends the budget (2) and is refused the third; replica two, which has not heard from Redis about it
   * yet, may let one through, and refuses once Redis's answer came back.
   */
  async function spentOnOneHoldsBackTwo(redisUrl: string, opts: { rpm?: number; perClient?: number } = {}) {
    const before = up.requests.length;
    const one = await replica(redisUrl, opts);
    const two = await replica(redisUrl, opts);
    expect([await ask(one), await ask(one), await ask(one)]).toEqual([200, 200, 429]);
    await settle();
    const first = await ask(two);
    await settle();
    expect([200, 429]).toContain(first);
    expect(await ask(two)).toBe(429);
    expect(up.requests.length - before).toBe(first === 200 ? 3 : 2);
    expect(await sharedStoreOf(two)).toMatchObject({
      kind: 'redis',
      status: 'up',
      connection: 'ready',
      errors: 0,
    });
  }

  it("a client's window is shared: the second replica refuses once the first used it", () =>
    spentOnOneHoldsBackTwo(`${redis.url}/1`));

  it('an endpoint budget is shared: requests per minute spent on one replica hold back the other', () =>
    // A generous per-client window, so that the endpoint's budget is what refuses.
    spentOnOneHoldsBackTwo(`${redis.url}/2`, { rpm: 2, perClient: 100 }));

  it('with Redis away, requests are decided locally and never fail for it', async () => {
    const gone = await startRedis();
    const url = gone.url;
    await gone.stop();
    const c = await replica(url);
    expect([await ask(c), await ask(c), await ask(c)]).toEqual([200, 200, 429]);
    await settle();
    const view = (await sharedStoreOf(c)) as { kind: string; status: string; errors: number };
    expect(view.kind).toBe('redis');
    expect(view.status).not.toBe('ready');
    expect(view.errors).toBeGreaterThan(0); // the client windows' batches, refused while Redis is away
    expect(logs.join('')).toContain('shared rate-limit store (Redis) unavailable');
  });
});

describe('replicas sharing breaker state over Redis pub/sub', () => {
  it('a circuit one replica opens keeps the others away from the endpoint, a replica started later too; a reset by hand closes it on all', {
    timeout: 30_000,
  }, async () => {
    const bad = await startFakeUpstream({ name: 'bad', defaultBehaviour: { type: 'status', status: 500 } });
    try {
      const url = `${redis.url}/3`;
      const make = async () => {
        const server = createServer({
          router: {
            endpoints: [
              { id: 'bad', url: bad.url, apiKey: fakeKey('bad'), priority: 1 },
              { id: 'good', url: up.url, apiKey: upstreamKey, priority: 2 },
            ],
            backoff: { initialMs: 1, maxMs: 1 },
          },
          server: { port: 0, redisUrl: url, logLevel: 'warn' },
          breaker: { enabled: true, threshold: 2, halfOpenAfterMs: 60_000 },
          logDestination: { write: () => true } as never,
        });
        servers.push(server);
        const client = new OpenAI({ baseURL: `${await server.listen()}/v1`, apiKey: 'x', maxRetries: 0 });
        return { server, client };
      };
      const one = await make();
      const two = await make();
      // Both replicas subscribed before anything is published (pub/sub does not keep messages).
      const probe = new Redis(url);
      try {
        await until(async () => {
          const [, n] = (await probe.pubsub('NUMSUB', 'lb:breaker:3')) as [string, number];
          return n >= 2;
        });
      } finally {
        probe.disconnect();
      }
      const chat = (c: OpenAI) =>
        c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
      const breakerOf = (s: LbServer) =>
        s.router.snapshot().endpoints.find((e) => e.id === 'bad')!.guards.breaker as {
          state: string;
          reason?: string;
        };
      // Two failures on replica one (each failed over and answered by `good`): its circuit opens.
      for (let i = 0; i < 2; i++) expect((await chat(one.client)).system_fingerprint).toBe('up');
      expect(bad.requests.length).toBe(2);
      expect(breakerOf(one.server).state).toBe('open');
      // Replica two never met a failure, and does not try `bad` either.
      await until(() => breakerOf(two.server).state === 'open');
      expect(breakerOf(two.server).reason).toMatch(
        /^opened on replica \S+: 2 consecutive failures; last: HTTP 500/,
      );
      expect((await chat(two.client)).system_fingerprint).toBe('up');
      expect(bad.requests.length).toBe(2);
      // A replica started during the outage hears of it from replica one, and keeps away from `bad` too.
      const three = await make();
      await until(() => breakerOf(three.server).state === 'open');
      expect(breakerOf(three.server).reason).toMatch(/^opened on replica \S+: 2 consecutive failures/);
      expect((await chat(three.client)).system_fingerprint).toBe('up');
      expect(bad.requests.length).toBe(2);
      // An operator enables the endpoint again on replica one (POST /admin/endpoints/bad/enable): the others follow.
      one.server.router.setEndpointHealth('bad', true);
      expect(breakerOf(one.server).state).toBe('closed');
      await until(() => breakerOf(two.server).state === 'closed');
      expect(breakerOf(two.server)).toMatchObject({
        state: 'closed',
        reason: expect.stringMatching(/^probe passed on replica/),
      });
      await until(() => breakerOf(three.server).state === 'closed');
      expect((await chat(two.client)).system_fingerprint).toBe('up');
      expect(bad.requests.length).toBe(3);
    } finally {
      await bad.close();
    }
  });
});
