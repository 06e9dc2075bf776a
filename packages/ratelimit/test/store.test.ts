import { createRouter } from '@lb/core';
import { fakeKey, runStoreContract, spendsSent, startRedis, type TestRedis, watchCalls } from '@lb/testing';
import Redis from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  attachRateLimit,
  type BucketSpec,
  createClientLimiter,
  MemoryStore,
  RedisStore,
  type Store,
  type WindowSpec,
} from '../src/index.js';
import { refill } from '../src/internal.js';

const spec: BucketSpec = { capacity: 5, refillPerMs: 5 / 1000 };
const fixed: WindowSpec = { limit: 3, windowMs: 1000, sliding: false };

/** A store that answers later, like a remote one would, backed by a memory store standing for the shared server. */
function remoteStore(shared = new MemoryStore(), opts: { fail?: boolean; record?: boolean } = {}) {
  const calls: string[] = [];
  const later =
    <A extends unknown[], R>(name: string, fn: (...a: A) => R) =>
    (...a: A): Promise<R> => {
      calls.push(name);
      return opts.fail ? Promise.reject(new Error('ECONNREFUSED')) : Promise.resolve().then(() => fn(...a));
    };
  const store: Store = {
    peek: later('peek', shared.peek.bind(shared)),
    take: later('take', shared.take.bind(shared)),
    adjust: later('adjust', shared.adjust.bind(shared)),
    getCooldown: later('getCooldown', shared.getCooldown.bind(shared)),
    setCooldown: later('setCooldown', shared.setCooldown.bind(shared)),
    hit: later('hit', shared.hit.bind(shared)),
    delete: later('delete', shared.delete.bind(shared)),
    ...(opts.record === false ? {} : { record: later('record', shared.record.bind(shared)) }),
  };
  return { store, shared, calls };
}

runStoreContract({ name: 'MemoryStore', create: () => new MemoryStore() });
runStoreContract({ name: 'an asynchronous store', create: () => remoteStore().store });

describe('MemoryStore', () => {
  it('sweeps expired windows lazily, without timers', () => {
    const s = new MemoryStore({ sweepEvery: 10 });
    for (let i = 0; i < 9; i++) s.hit(`client-${i}`, fixed, 0);
    expect(s.size).toBe(9);
    s.hit('late', fixed, 5000); // the 10th new window sweeps the 9 expired ones
    expect(s.size).toBe(1);
    expect(() => new MemoryStore({ sweepEvery: 0 })).toThrow('received 0');
  });

  it('gives a live cell per bucket: changed in place, the same level as peek, marked dead when deleted', () => {
    const s = new MemoryStore();
    const c = s.cell('k', spec);
    expect(c).toMatchObject({ tokens: 5, dead: false });
    expect(s.peek('k', spec, 1000)).toBe(5); // a fresh cell is full at any time, as a missing bucket
    s.take('k', 3, spec, 1000);
    s.adjust('k', -1, spec, 1200); // +1 refilled, -1 debt
    expect(s.cell('k', spec)).toBe(c);
    expect(c).toMatchObject({ tokens: 2, at: 1200 });
    expect(refill(c.tokens, c.at, spec, 1300)).toBe(s.peek('k', spec, 1300));
    s.delete('k');
    expect(c.dead).toBe(true);
    const again = s.cell('k', spec);
    expect(again).not.toBe(c);
    expect(again).toMatchObject({ tokens: 5, dead: false });
  });

  it('counts its cooldowns and drops an expired one when getCooldown meets it', () => {
    const s = new MemoryStore();
    expect(s.cooldowns).toBe(0);
    s.setCooldown('a', { until: 1000, reason: 'x' });
    s.setCooldown('b', { until: 2000, reason: 'y' });
    expect(s.cooldowns).toBe(2);
    expect(s.getCooldown('a', 999)?.reason).toBe('x');
    expect(s.getCooldown('a', 1000)).toBeUndefined();
    expect(s.cooldowns).toBe(1);
    s.setCooldown('a', { until: 500, reason: 'older' }); // a dropped cooldown does not outlive its end
    expect(s.getCooldown('a', 600)).toBeUndefined();
    expect(s.getCooldown('b', 1500)?.reason).toBe('y');
    expect(s.cooldowns).toBe(1);
  });
});

describe('a remote store behind the synchronous local view', () => {
  const T0 = Date.UTC(2025, 0, 1);
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const ep = (id: string, extra = {}) => ({ id, url: `http://${id}.test/v1`, apiKey: fakeKey(id), ...extra });

  it('decides synchronously, forwards takes, and tightens budgets other replicas spent', async () => {
    const { store, shared, calls } = remoteStore();
    const r = createRouter({ endpoints: [ep('a', { limits: { rps: 4 } })], maxWaitMs: 0 });
    const h = attachRateLimit(r, { store });
    // Another replica spent 3 of the shared 4 tokens.
    shared.take('lb:rl:a:rps', 3, { capacity: 4, refillPerMs: 4 / 1000 }, T0);
    const p = r.execute({}, async () => 'ok');
    expect(h.snapshot().a.rps?.remaining).toBe(3); // the local view decided at once, before the store answered
    await p;
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).not.toContain('adjust'); // spends go out together, every flushIntervalMs (10 ms)
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.filter((c) => c === 'adjust')).toHaveLength(1);
    expect(shared.peek('lb:rl:a:rps', { capacity: 4, refillPerMs: 4 / 1000 }, T0 + 10)).toBeCloseTo(0.04);
    expect(h.snapshot().a.rps?.remaining).toBe(0); // corrected by the shared bucket
    expect(r.pick()).toBeUndefined();
  });

  it('sends the spends of many requests on one bucket as one store call', async () => {
    const { store, shared, calls } = remoteStore();
    const r = createRouter({ endpoints: [ep('a', { limits: { rps: 100 } })], maxWaitMs: 0 });
    attachRateLimit(r, { store, flushIntervalMs: 20 });
    for (let i = 0; i < 30; i++) await r.execute({}, async () => 'ok');
    await vi.advanceTimersByTimeAsync(20);
    expect(calls.filter((c) => c === 'adjust' || c === 'take')).toEqual(['adjust']);
    expect(shared.peek('lb:rl:a:rps', { capacity: 100, refillPerMs: 100 / 1000 }, T0)).toBe(70);
  });

  it("adopts a replica's 429 cooldown when it next uses the endpoint", async () => {
    const { store, shared } = remoteStore();
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 })], maxWaitMs: 0 });
    attachRateLimit(r, { store, syncIntervalMs: 0 });
    shared.setCooldown('lb:rl:a:cooldown', { until: T0 + 5000, reason: 'upstream answered 429 (replica 2)' });
    expect(r.pick()?.endpoint.id).toBe('a'); // not known yet
    await r.execute({}, async () => 'ok');
    await vi.advanceTimersByTimeAsync(0);
    expect(r.pick()?.endpoint.id).toBe('b');
    expect(r.snapshot().endpoints[0].unavailableReason).toContain('replica 2');
  });

  it('a failing store never fails a request: errors are counted', async () => {
    const { store } = remoteStore(new MemoryStore(), { fail: true });
    const r = createRouter({ endpoints: [ep('a', { limits: { rps: 1 } })], maxWaitMs: 0 });
    const h = attachRateLimit(r, { store });
    await expect(r.execute({}, async () => 'ok')).resolves.toBe('ok');
    await vi.advanceTimersByTimeAsync(0);
    expect(h.storeErrors).toBeGreaterThan(0);
    expect(r.pick()).toBeUndefined(); // the local budget still holds
    const clients = createClientLimiter({ requests: 1, windowMs: 60_000, store });
    expect(clients.take('ip-1').allowed).toBe(true);
    expect(clients.take('ip-1').allowed).toBe(false); // the local window still holds
    await vi.advanceTimersByTimeAsync(10);
    expect(clients.storeErrors).toBe(1);
  });

  it.each([
    ['batched (record)', true],
    ['one hit per request', false],
  ])('client limits: a full shared window refuses locally too, %s', async (_how, record) => {
    const { store, shared, calls } = remoteStore(new MemoryStore(), { record });
    const spec: WindowSpec = { limit: 2, windowMs: 60_000, sliding: false };
    shared.hit('lb:client:ip-1', spec, T0);
    shared.hit('lb:client:ip-1', spec, T0); // another replica used the window
    const limiter = createClientLimiter({ requests: 2, windowMs: 60_000, algorithm: 'fixed', store });
    expect(limiter.take('ip-1').allowed).toBe(true); // local view
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toEqual([record ? 'record' : 'hit']);
    const r = limiter.take('ip-1');
    expect(r.allowed).toBe(false);
    expect(r.retryAfterMs).toBe(60_000 - 10); // the window ends at T0 + 60 s; asked at T0 + 10 ms
  });
});

describe('RedisStore on a real redis-server', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const connect = async () => {
    const c = new Redis(redis.url, { enableOfflineQueue: false, lazyConnect: true, maxRetriesPerRequest: 0 });
    await c.connect();
    clients.push(c);
    return c;
  };
  let client: Redis;
  let n = 0;
  beforeAll(async () => {
    redis = await startRedis();
    client = await connect();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await redis?.stop();
  });

  runStoreContract({
    name: 'RedisStore',
    create: () => new RedisStore(client, { prefix: `contract${++n}:` }),
  });

  it('keeps fractions exactly and lets idle keys expire', async () => {
    const s = new RedisStore(client, { prefix: 'exp:' });
    const now = Date.now();
    expect(await s.take('b', 1.25, spec, now)).toEqual({ ok: true, tokens: 3.75 });
    expect(await s.peek('b', spec, now + 50)).toBeCloseTo(4);
    const bucketTtl = await client.pttl('exp:b');
    // Full again after 1.25 tokens at 5/s = 250 ms (+1 s of margin).
    expect(bucketTtl).toBeGreaterThan(1000);
    expect(bucketTtl).toBeLessThanOrEqual(1250);
    await s.hit('w', fixed, now);
    const windowTtl = await client.pttl('exp:w');
    expect(windowTtl).toBeGreaterThan(1000);
    expect(windowTtl).toBeLessThanOrEqual(2000);
  });

  it('says clearly what it needs, and refuses at once while Redis is away', async () => {
    expect(() => new RedisStore({} as never)).toThrow('an ioredis instance');
    const away = new RedisStore({ status: 'reconnecting', script: async () => '', evalsha: async () => 0 });
    await expect(away.peek('k', spec, 0)).rejects.toThrow('Redis is reconnecting');
  });

  it('loads its script again after Redis forgot it (SCRIPT FLUSH)', async () => {
    const s = new RedisStore(client, { prefix: 'flush:' });
    await s.take('k', 1, spec, 0);
    await client.script('FLUSH');
    expect(await s.take('k', 1, spec, 0)).toEqual({ ok: true, tokens: 3 });
  });

  it('rides out a Redis restart: refused while it is away, shared again once it is back (its script reloaded)', async () => {
    const own = await startRedis();
    const c = new Redis(own.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => 50,
      lazyConnect: true,
    });
    c.on('error', () => {});
    await c.connect();
    try {
      const loads = vi.spyOn(c, 'script');
      const s = new RedisStore(c, { prefix: 'restart:' });
      expect(await s.take('k', 1, spec, 0)).toEqual({ ok: true, tokens: 4 });
      expect(loads).toHaveBeenCalledTimes(1);
      await own.stop();
      await expect(s.take('k', 1, spec, 0)).rejects.toThrow();
      const back = await startRedis({ port: own.port });
      try {
        if (c.status !== 'ready') await new Promise((r) => c.once('ready', r));
        expect(c.status).toBe('ready');
        // A fresh server: nothing persisted (a full bucket), and no script until the store loads it again.
        expect(await s.take('k', 1, spec, 0)).toEqual({ ok: true, tokens: 4 });
        expect(loads).toHaveBeenCalledTimes(2); // NOSCRIPT from the new server, then loaded again
      } finally {
        await back.stop();
      }
    } finally {
      c.disconnect();
    }
  });

  const ep = (id: string, extra = {}) => ({ id, url: `http://${id}.test/v1`, apiKey: fakeKey(id), ...extra });

  it('two replicas share one budget: the second is held back once the first spent it', async () => {
    const prefix = `shared${Date.now()}:`;
    // 4 a minute: no token comes back while the test runs, however slow the machine.
    const replicas = await Promise.all(
      [1, 2].map(async () => {
        const r = createRouter({ endpoints: [ep('a', { limits: { rpm: 4 } })], maxWaitMs: 0 });
        const w = watchCalls(new RedisStore(await connect(), { prefix }));
        const h = attachRateLimit(r, { store: w.proxy });
        return { r, h, w };
      }),
    );
    const [one, two] = replicas;
    const served: string[] = [];
    for (let i = 0; i < 4; i++) await one.r.execute({}, async () => served.push('one'));
    await one.w.answered((l) => spendsSent(l) === 4); // the shared store has all four
    expect(one.r.pick()).toBeUndefined();
    // Replica two knows nothing yet: its local view (a full bucket) lets exactly one request through, whose shared
    // spend, answered, brings the shared level into its local copy.
    expect(two.r.pick()?.endpoint.id).toBe('a');
    await two.r.execute({}, async () => served.push('two'));
    await two.w.answered((l) => spendsSent(l) === 1);
    expect(two.r.pick()).toBeUndefined();
    expect(two.h.snapshot().a.rpm?.remaining).toBeLessThan(0); // the one extra request is a shared debt
    expect(served).toEqual(['one', 'one', 'one', 'one', 'two']);
    expect(one.h.storeErrors + two.h.storeErrors).toBe(0);
  });

  it("a replica adopts another one's 429 cooldown from Redis", async () => {
    const prefix = `cooldown${Date.now()}:`;
    const make = async () => {
      const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 })], maxWaitMs: 0 });
      const w = watchCalls(new RedisStore(await connect(), { prefix }));
      attachRateLimit(r, { store: w.proxy, syncIntervalMs: 0 });
      return { r, w };
    };
    const { r: one, w: w1 } = await make();
    const { r: two, w: w2 } = await make();
    const used: string[] = [];
    await one.execute({}, async (ctx) => {
      used.push(ctx.endpoint.id);
      return ctx.endpoint.id === 'a'
        ? { status: 429, headers: { 'retry-after': '30' } }
        : { status: 200, headers: {} };
    });
    expect(used).toEqual(['a', 'b']);
    await w1.answered((l) => l.some((c) => c.method === 'setCooldown')); // the cooldown is in Redis
    expect(two.pick()?.endpoint.id).toBe('a'); // not known to replica two yet
    await two.execute({}, async () => ({ status: 200, headers: {} }));
    await w2.answered((l) => l.some((c) => c.method === 'getCooldown')); // it asked Redis, and took the answer
    expect(two.pick()?.endpoint.id).toBe('b');
    expect(two.snapshot().endpoints[0].unavailableReason).toMatch(/429/);
  });
});
