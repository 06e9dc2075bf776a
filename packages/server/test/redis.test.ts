import type { Store } from '@lb/ratelimit';
import {
  type AnsweredCall,
  type FakeUpstream,
  fakeKey,
  spendsSent,
  startFakeUpstream,
  startRedis,
  type TestRedis,
  type Watched,
  watchCalls,
} from '@lb/testing';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LbServer } from '../src/index.js';
import { integrations } from '../src/integrations.js';
import { buildServer, type CreateServerOptions } from '../src/server.js';

// Two lb-server replicas sharing one real redis-server (`server.redisUrl`, env LB_REDIS_URL): per-client windows and
// endpoint budgets are shared; a Redis that is away never fails a request.
const upstreamKey = fakeKey('shared-upstream');
const clientKey = 'lb-client-key-shared-0123456789';
const logs: string[] = [];

let redis: TestRedis;
let up: FakeUpstream;
const servers: LbServer[] = [];

/**
 * An lb-server with its real Redis store watched (`watchCalls`), so a test can wait for the store's answers. Its
 * `store` is undefined until the server connected it (a Redis URL given).
 */
function createServer(options: CreateServerOptions): LbServer & { store?: Watched<Store> } {
  let store: Watched<Store> | undefined;
  const server = buildServer(options, {
    ...integrations,
    sharedStore: (url, onError, opts) => {
      const shared = integrations.sharedStore!(url, onError, opts);
      store = watchCalls(shared.store);
      return { ...shared, store: store.proxy };
    },
  });
  return Object.assign(server, { store });
}

async function replica(
  redisUrl: string,
  extra: { rpm?: number; perClient?: number } = {},
): Promise<OpenAI & { store: Watched<Store> }> {
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
  return Object.assign(new OpenAI({ baseURL: `${base}/v1`, apiKey: clientKey, maxRetries: 0 }), {
    store: server.store!,
  });
}

/** `/health`'s view of the shared store. */
async function sharedStoreOf(c: OpenAI): Promise<unknown> {
  // the detail is for key holders (a gateway key is set)
  const res = await fetch(c.baseURL.replace(/\/v1$/, '/health'), {
    headers: { authorization: `Bearer ${clientKey}` },
  });
  const text = await res.text();
  expect(text).not.toContain('redis://');
  return JSON.parse(text).sharedStore;
}

const ask = (c: OpenAI) =>
  c.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }).then(
    () => 200,
    (e: { status?: number }) => e.status ?? 0,
  );

/** Polls `cond` every 20 ms (Redis tells no one of a subscription); the test's own timeout bounds it. */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 20));
}

/** Resolves once the breaker of `server` holds `endpointId` in `state`: at once, or on its `guard:state` event. */
function breakerState(server: LbServer, endpointId: string, state: string): Promise<void> {
  const now = server.router.snapshot().endpoints.find((e) => e.id === endpointId)?.guards.breaker?.state;
  if (now === state) return Promise.resolve();
  return new Promise((resolve) => {
    const off = server.router.on('guard:state', (e) => {
      if (e.guard !== 'breaker' || e.endpointId !== endpointId || e.to !== state) return;
      off();
      resolve();
    });
  });
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
   * yet (its local view decides at once), lets exactly one through, and refuses once Redis's answer to that one came
   * back (the shared count: 3 of 2).
   */
  async function spentOnOneHoldsBackTwo(redisUrl: string, opts: { rpm?: number; perClient?: number } = {}) {
    const before = up.requests.length;
    const one = await replica(redisUrl, opts);
    const two = await replica(redisUrl, opts);
    // What the budget under test (the endpoint's bucket, or the client's window) has sent to Redis.
    const sent = (log: readonly AnsweredCall[]) =>
      spendsSent(log.filter((c) => (c.method === 'adjust') === (opts.rpm !== undefined)));
    expect([await ask(one), await ask(one), await ask(one)]).toEqual([200, 200, 429]);
    await one.store.answered((log) => sent(log) >= 2);
    expect(await ask(two)).toBe(200);
    await two.store.answered((log) => sent(log) >= 1);
    expect(await ask(two)).toBe(429);
    expect(up.requests.length - before).toBe(3);
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
    // The store's first refused call turns it degraded: wait for /health to say so (no request waits on Redis).
    await until(async () => ((await sharedStoreOf(c)) as { status: string }).status === 'degraded');
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
      await breakerState(two.server, 'bad', 'open');
      expect(breakerOf(two.server).reason).toMatch(
        /^opened on replica \S+: 2 consecutive failures; last: HTTP 500/,
      );
      expect((await chat(two.client)).system_fingerprint).toBe('up');
      expect(bad.requests.length).toBe(2);
      // A replica started during the outage hears of it from replica one, and keeps away from `bad` too.
      const three = await make();
      await breakerState(three.server, 'bad', 'open');
      expect(breakerOf(three.server).reason).toMatch(/^opened on replica \S+: 2 consecutive failures/);
      expect((await chat(three.client)).system_fingerprint).toBe('up');
      expect(bad.requests.length).toBe(2);
      // An operator enables the endpoint again on replica one (POST /admin/endpoints/bad/enable): the others follow.
      one.server.router.setEndpointHealth('bad', true);
      expect(breakerOf(one.server).state).toBe('closed');
      await breakerState(two.server, 'bad', 'closed');
      expect(breakerOf(two.server)).toMatchObject({
        state: 'closed',
        reason: expect.stringMatching(/^probe passed on replica/),
      });
      await breakerState(three.server, 'bad', 'closed');
      expect((await chat(two.client)).system_fingerprint).toBe('up');
      expect(bad.requests.length).toBe(3);
    } finally {
      await bad.close();
    }
  });
});
