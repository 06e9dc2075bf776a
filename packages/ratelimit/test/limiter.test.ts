import { createRouter, type EndpointConfig, isNoHealthyEndpointError, type RouterConfig } from '@lb/core';
import { fakeKey } from '@lb/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { attachRateLimit, isRateLimitedError, MemoryStore } from '../src/index.js';

const T0 = Date.UTC(2025, 0, 1);

function ep(id: string, extra: Partial<EndpointConfig> = {}): EndpointConfig {
  return { id, url: `http://${id}.test/v1`, apiKey: fakeKey(id), ...extra };
}

function router(endpoints: EndpointConfig[], extra: Partial<RouterConfig> = {}) {
  return createRouter({ endpoints, maxWaitMs: 0, backoff: { initialMs: 1, maxMs: 1 }, ...extra });
}

const ok = async () => ({ status: 200, headers: {} });

describe('attachRateLimit: token buckets', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('never over-admits under a burst of concurrent execute calls', async () => {
    const r = router([ep('a', { limits: { rps: 3 } }), ep('b', { limits: { rps: 2, burst: 4 } })], {
      strategy: 'round-robin',
    });
    attachRateLimit(r);
    const used: Record<string, number> = { a: 0, b: 0 };
    let release!: () => void;
    const gate = new Promise<void>((res) => {
      release = res;
    });
    const calls = Array.from({ length: 20 }, () =>
      r.execute({ model: 'm' }, async ({ endpoint }) => {
        used[endpoint.id]++;
        await gate; // every admitted attempt is in flight at once
        return { status: 200 };
      }),
    );
    release();
    const results = await Promise.allSettled(calls);
    expect(used).toEqual({ a: 3, b: 4 });
    expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(7);
    const refused = results
      .filter((x) => x.status === 'rejected')
      .map((x) => (x as PromiseRejectedResult).reason);
    expect(refused).toHaveLength(13);
    for (const e of refused) {
      expect(isNoHealthyEndpointError(e)).toBe(true);
      expect(e.status).toBe(429);
      expect(e.retryAfterMs).toBeGreaterThan(0);
      expect(e.retryAfterMs).toBeLessThanOrEqual(500);
    }
  });

  it('refills lazily from timestamps (fake timers)', async () => {
    const r = router([ep('a', { limits: { rps: 5 } })]);
    const h = attachRateLimit(r);
    for (let i = 0; i < 5; i++) await r.execute({}, ok);
    await expect(r.execute({}, ok)).rejects.toMatchObject({ status: 429 });
    expect(h.snapshot().a.rps).toEqual({ limit: 5, capacity: 5, remaining: 0 });
    expect(h.snapshot().a).toMatchObject({ available: false, until: T0 + 200 });
    vi.advanceTimersByTime(199);
    expect(r.pick()).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(r.pick()?.endpoint.id).toBe('a');
    vi.advanceTimersByTime(10_000);
    expect(h.snapshot().a.rps?.remaining).toBe(5); // capped at the burst
  });

  it('the router waits for the earliest token when every endpoint is out of budget', async () => {
    const r = router([ep('a', { limits: { rps: 2 } })], { maxWaitMs: 1000 });
    attachRateLimit(r);
    await r.execute({}, ok);
    await r.execute({}, ok);
    let done = false;
    const p = r.execute({}, ok).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(499);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it('fails over to another endpoint instead of queueing behind a spent one', async () => {
    const r = router([ep('a', { limits: { rpm: 2 } }), ep('b', { priority: 2 })]);
    attachRateLimit(r);
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) await r.execute({}, async ({ endpoint }) => seen.push(endpoint.id));
    expect(seen).toEqual(['a', 'a', 'b', 'b']);
    vi.advanceTimersByTime(30_000); // rpm refills one request every 30 s
    await r.execute({}, async ({ endpoint }) => seen.push(endpoint.id));
    expect(seen.at(-1)).toBe('a');
  });

  it('takes limits from options.limits, validates them and names the bad value', () => {
    const r = router([ep('a')]);
    const h = attachRateLimit(r, { limits: () => ({ rps: 1 }) });
    expect(h.snapshot().a.rps?.limit).toBe(1);
    h.dispose();
    expect(() => attachRateLimit(router([ep('x', { limits: { rps: -1 } })]))).toThrow(
      'endpoint "x" limits.rps must be a number > 0, received -1',
    );
    expect(() => attachRateLimit(r, { reserveRequests: -2 })).toThrow('received -2');
    expect(() => attachRateLimit(r, { store: {} as never })).toThrow('missing peek()');
    expect(() => attachRateLimit({} as never)).toThrow('expected a Router');
  });

  it('dispose detaches the guard; reloads keep budgets, apply new limits and forget removed endpoints', async () => {
    const store = new MemoryStore();
    const r = router([ep('a', { limits: { rps: 1 } }), ep('b', { priority: 2, limits: { rps: 1 } })]);
    const h = attachRateLimit(r, { store });
    await r.execute({}, ok);
    expect(h.snapshot().a.rps?.remaining).toBe(0);
    r.reload({ ...r.config, endpoints: [ep('a', { limits: { rps: 1, burst: 3 } })] });
    expect(h.snapshot().a.rps).toEqual({ limit: 1, capacity: 3, remaining: 0 });
    expect(Object.keys(h.snapshot())).toEqual(['a']);
    expect(r.pick()).toBeUndefined();
    h.dispose();
    h.dispose();
    expect(r.guards).toHaveLength(0);
    expect(r.pick()?.endpoint.id).toBe('a');
  });
});

describe('attachRateLimit: picks without a clock read', () => {
  it('admits from the tokens a bucket held, and reads the clock only when those are not enough', async () => {
    let t = T0;
    let reads = 0;
    const clock = () => {
      reads++;
      return t;
    };
    const r = router([ep('a', { limits: { rps: 2 } }), ep('b', { priority: 2 })], { now: clock });
    attachRateLimit(r);
    r.pick(); // the first pick builds the route's eligible list (that reads the clock once)
    reads = 0;
    for (let i = 0; i < 100; i++) expect(r.pick()?.endpoint.id).toBe('a');
    expect(reads).toBe(0);
    await r.execute({}, ok);
    await r.execute({}, ok); // a's two tokens are spent
    reads = 0;
    expect(r.pick()?.endpoint.id).toBe('b'); // the bound refuses a, the clock confirms it
    expect(reads).toBeGreaterThan(0);
    t += 499;
    expect(r.pick()?.endpoint.id).toBe('b');
    t += 1; // one token back
    expect(r.pick()?.endpoint.id).toBe('a');
  });

  it('lets an expired cooldown or upstream budget go by the clock, not by the bound', async () => {
    let t = T0;
    const r = router([ep('a'), ep('b', { priority: 2 })], { now: () => t });
    const h = attachRateLimit(r);
    await r.execute({}, async () => ({
      status: 200,
      headers: {
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': '1s',
        'x-ratelimit-remaining-tokens': '10',
        'x-ratelimit-reset-tokens': '2s',
      },
    }));
    expect(h.snapshot().a.cooldownUntil).toBe(T0 + 1000);
    expect(r.pick({ estimatedTokens: 50 })?.endpoint.id).toBe('b');
    t += 1000; // the cooldown is over; the token budget (10 left, 50 asked) still runs
    expect(r.pick({ estimatedTokens: 5 })?.endpoint.id).toBe('a');
    expect(r.pick({ estimatedTokens: 50 })?.endpoint.id).toBe('b');
    t += 1000; // the upstream's token window has reset
    expect(r.pick({ estimatedTokens: 50 })?.endpoint.id).toBe('a');
  });
});

describe('attachRateLimit: picks without a store lookup', () => {
  it("reads a bucket's live cell: spends and deletes by other users of a shared store count at the next pick", async () => {
    let t = T0;
    const store = new MemoryStore();
    const mine = router([ep('a', { limits: { rps: 2 } }), ep('b', { priority: 2 })], { now: () => t });
    const other = router([ep('a', { limits: { rps: 2 } })], { now: () => t });
    attachRateLimit(mine, { store });
    const h = attachRateLimit(other, { store });
    expect(mine.pick()?.endpoint.id).toBe('a');
    await other.execute({}, ok);
    await other.execute({}, ok); // the shared bucket of a is spent by the other router
    expect(mine.pick()?.endpoint.id).toBe('b');
    h.reset('a'); // the other router deletes a's keys: the cell mine reads is dead, the bucket full again
    expect(mine.pick()?.endpoint.id).toBe('a');
    await other.execute({}, ok);
    await other.execute({}, ok);
    expect(mine.pick()?.endpoint.id).toBe('b'); // the new bucket's cell, not the dead one
    t += 500;
    expect(mine.pick()?.endpoint.id).toBe('a');
  });

  it('skips the cooldown lookup while the store holds none, and an expired cooldown goes when a pick meets it', async () => {
    let t = T0;
    class Counting extends MemoryStore {
      lookups = 0;
      override getCooldown(key: string, now: number) {
        this.lookups++;
        return super.getCooldown(key, now);
      }
    }
    const store = new Counting();
    const r = router([ep('a'), ep('b', { priority: 2 })], { now: () => t });
    attachRateLimit(r, { store });
    for (let i = 0; i < 100; i++) expect(r.pick()?.endpoint.id).toBe('a');
    expect(store.lookups).toBe(0);
    await r.execute({}, async ({ endpoint }) =>
      endpoint.id === 'a' ? { status: 429, headers: { 'retry-after-ms': '1000' } } : { status: 200 },
    );
    expect(store.cooldowns).toBe(1);
    expect(r.pick()?.endpoint.id).toBe('b');
    expect(store.lookups).toBeGreaterThan(0);
    t += 1000;
    expect(r.pick()?.endpoint.id).toBe('a');
    expect(store.cooldowns).toBe(0);
    store.lookups = 0;
    r.pick();
    expect(store.lookups).toBe(0);
  });
});

describe('attachRateLimit: reset', () => {
  it('forgets what it learnt of an endpoint (budgets, cooldown, the upstream headers) and learns again', async () => {
    let t = T0;
    const r = router([ep('a', { limits: { rps: 1 } }), ep('b', { priority: 2 })], { now: () => t });
    const h = attachRateLimit(r);
    await r.execute({}, async () => ({
      status: 200,
      headers: { 'x-ratelimit-remaining-tokens': '10', 'x-ratelimit-reset-tokens': '1m' },
    }));
    expect(r.pick()?.endpoint.id).toBe('b'); // rps spent
    t += 1000;
    expect(r.pick({ estimatedTokens: 50 })?.endpoint.id).toBe('b'); // 10 tokens left upstream
    h.reset('a');
    expect(h.snapshot().a.upstream?.remainingTokens).toBeUndefined();
    expect(r.pick({ estimatedTokens: 50 })?.endpoint.id).toBe('a');
    await r.execute({}, async () => ({
      status: 200,
      headers: { 'x-ratelimit-remaining-tokens': '10', 'x-ratelimit-reset-tokens': '1m' },
    }));
    t += 1000;
    expect(r.pick({ estimatedTokens: 50 })?.endpoint.id).toBe('b');
  });
});

describe('attachRateLimit: upstream headers and 429s', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const reply =
    (headers: Record<string, string>, status = 200) =>
    async () => ({ status, headers });

  it('stops before a 429 when x-ratelimit-remaining-requests reaches 0, until the reset', async () => {
    const r = router([ep('a'), ep('b', { priority: 2 })]);
    const h = attachRateLimit(r);
    await r.execute(
      {},
      reply({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1.5s' }),
    );
    const s = h.snapshot().a;
    expect(s.cooldownUntil).toBe(T0 + 1500);
    expect(s.cooldownReason).toContain('x-ratelimit-remaining-requests: 0');
    expect(s.upstream).toMatchObject({ remainingRequests: 0, requestsResetAt: T0 + 1500 });
    expect(r.pick()?.endpoint.id).toBe('b');
    vi.advanceTimersByTime(1500);
    expect(r.pick()?.endpoint.id).toBe('a');
  });

  it('counts requests down locally from the last remaining header', async () => {
    const r = router([ep('a'), ep('b', { priority: 2 })]);
    attachRateLimit(r);
    const seen: string[] = [];
    await r.execute({}, async ({ endpoint }) => {
      seen.push(endpoint.id);
      return {
        status: 200,
        headers: {
          'x-ratelimit-remaining-requests': '2',
          'x-ratelimit-limit-requests': '100',
          'x-ratelimit-reset-requests': '6m0s',
        },
      };
    });
    for (let i = 0; i < 3; i++)
      await r.execute({}, async ({ endpoint }) => {
        seen.push(endpoint.id);
        return 'ok';
      });
    expect(seen).toEqual(['a', 'a', 'a', 'b']);
  });

  it('keeps a reserve and reads the tokens headers against the estimate', async () => {
    const r = router([ep('a'), ep('b', { priority: 2 })]);
    const h = attachRateLimit(r, { reserveRequests: 5 });
    await r.execute(
      {},
      reply({
        'x-ratelimit-remaining-requests': '50',
        'x-ratelimit-remaining-tokens': '1000',
        'x-ratelimit-reset-tokens': '20ms',
      }),
    );
    expect(r.pick({ estimatedTokens: 900 })?.endpoint.id).toBe('a');
    expect(r.pick({ estimatedTokens: 1001 })?.endpoint.id).toBe('b');
    expect(h.snapshot().a.upstream?.remainingTokens).toBe(1000);
    await r.execute({}, reply({ 'x-ratelimit-remaining-requests': '5' }));
    expect(h.snapshot().a.cooldownReason).toContain('x-ratelimit-remaining-requests: 5');
    expect(r.pick()?.endpoint.id).toBe('b');
  });

  it('headerThrottling: false ignores the headers', async () => {
    const r = router([ep('a'), ep('b', { priority: 2 })]);
    attachRateLimit(r, { headerThrottling: false });
    await r.execute(
      {},
      reply({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '10s' }),
    );
    expect(r.pick()?.endpoint.id).toBe('a');
  });

  it('keeps a 429 cooldown in the store, to the millisecond, so a replica sharing it avoids the endpoint', async () => {
    const store = new MemoryStore();
    const r1 = router([ep('a'), ep('b', { priority: 2 })]);
    const r2 = router([ep('a'), ep('b', { priority: 2 })]);
    attachRateLimit(r1, { store });
    const h2 = attachRateLimit(r2, { store });
    let calls = 0;
    const res = await r1.execute({}, async ({ endpoint }) => {
      calls++;
      return endpoint.id === 'a' ? { status: 429, headers: { 'retry-after-ms': '2500' } } : { status: 200 };
    });
    expect(res.status).toBe(200);
    expect(calls).toBe(2);
    expect(h2.snapshot().a).toMatchObject({ cooldownUntil: T0 + 2500, available: false });
    expect(r2.pick()?.endpoint.id).toBe('b');
    vi.advanceTimersByTime(2499);
    expect(r2.pick()?.endpoint.id).toBe('b');
    vi.advanceTimersByTime(1);
    expect(r2.pick()?.endpoint.id).toBe('a');
  });

  it('handle.reset clears cooldowns and refills', async () => {
    const r = router([ep('a', { limits: { rps: 1 } })]);
    const h = attachRateLimit(r);
    await r.execute({}, reply({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1m' }));
    expect(r.pick()).toBeUndefined();
    h.reset('a');
    expect(h.snapshot().a).toMatchObject({
      available: true,
      cooldownUntil: undefined,
      rps: { remaining: 1 },
    });
    h.reset();
    expect(r.pick()?.endpoint.id).toBe('a');
  });

  it('never shows a key in snapshots or veto reasons', async () => {
    const key = fakeKey('secret');
    const r = router([ep('a', { apiKey: key, limits: { rps: 1, tpm: 100 } })]);
    const h = attachRateLimit(r);
    await r.execute({}, reply({ 'x-ratelimit-remaining-requests': '0' }));
    const text = JSON.stringify([h.snapshot(), r.snapshot()]);
    expect(text).toContain('x-ratelimit-remaining-requests');
    expect(text).not.toContain(key);
  });
});

describe('attachRateLimit: tokens per minute', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('charges the estimate up front and corrects it with the reported usage', async () => {
    const r = router([ep('a', { limits: { tpm: 1000 } })]);
    const h = attachRateLimit(r);
    await r.execute({ estimatedTokens: 100 }, async (ctx) => {
      expect(h.snapshot().a.tpm?.remaining).toBe(900);
      ctx.reportUsage({ prompt_tokens: 400, completion_tokens: 200, total_tokens: 600 });
      return 'ok';
    });
    expect(h.snapshot().a.tpm?.remaining).toBe(400);
    // Usage below the estimate is refunded; usage reported after the attempt resolved (a stream's last chunk) counts.
    let report!: (u: { total_tokens: number }) => void;
    await r.execute({ estimatedTokens: 300 }, async (ctx) => {
      report = ctx.reportUsage;
      return 'ok';
    });
    expect(h.snapshot().a.tpm?.remaining).toBe(100);
    report({ total_tokens: 50 });
    expect(h.snapshot().a.tpm?.remaining).toBe(350);
    report({ total_tokens: 50 }); // a second report of the same request is not charged twice
    expect(h.snapshot().a.tpm?.remaining).toBe(350);
  });

  it('vetoes when the estimate does not fit, goes into debt on usage above the budget, refills per minute', async () => {
    const r = router([ep('a', { limits: { tpm: 600 } }), ep('b', { priority: 2 })]);
    const h = attachRateLimit(r, { estimateTokens: (req) => (req.operation === 'big' ? 500 : 10) });
    expect(r.pick({ operation: 'big' })?.endpoint.id).toBe('a');
    await r.execute({ operation: 'small' }, async (ctx) => {
      ctx.reportUsage({ prompt_tokens: 700, completion_tokens: 100 });
      return 'ok';
    });
    expect(h.snapshot().a.tpm?.remaining).toBe(-200);
    expect(r.pick({ operation: 'small' })?.endpoint.id).toBe('b');
    vi.advanceTimersByTime(30_000); // +300 tokens
    expect(r.pick({ operation: 'small' })?.endpoint.id).toBe('a');
    expect(r.pick({ operation: 'big' })?.endpoint.id).toBe('b');
    vi.advanceTimersByTime(40_000);
    expect(r.pick({ operation: 'big' })?.endpoint.id).toBe('a');
  });

  it('refunds the estimate of a failed attempt', async () => {
    const r = router([ep('a', { limits: { tpm: 1000 } }), ep('b', { priority: 2 })]);
    const h = attachRateLimit(r);
    const seen: string[] = [];
    await r.execute({ estimatedTokens: 400 }, async ({ endpoint }) => {
      seen.push(endpoint.id);
      return endpoint.id === 'a' ? { status: 503 } : { status: 200 };
    });
    expect(seen).toEqual(['a', 'b']);
    expect(h.snapshot().a.tpm?.remaining).toBe(1000);
  });
});

describe('attachRateLimit: bounded wait queue', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('lets maxQueue requests wait for budget and refuses the rest at once with the earliest retry time', async () => {
    const r = router([ep('a', { limits: { rps: 1 } })], { maxWaitMs: 5000 });
    const h = attachRateLimit(r, { maxQueue: 1 });
    await h.execute({}, ok); // the token
    const waiting = h.execute({}, ok);
    expect(h.waiting).toBe(1);
    const refused = await h.execute({}, ok).catch((e) => e);
    expect(isRateLimitedError(refused)).toBe(true);
    expect(refused).toMatchObject({ status: 429, scope: 'queue', retryAfterMs: 1000 });
    expect(refused.toOpenAIError().error.code).toBe('rate_limit_exceeded');
    await vi.advanceTimersByTimeAsync(1000);
    await expect(waiting).resolves.toMatchObject({ status: 200 });
    expect(h.waiting).toBe(0);
  });

  it('turns a wait that ends without budget into a RateLimitedError; passes other errors through', async () => {
    const r = router([ep('a', { limits: { rpm: 1 } })], { maxWaitMs: 1000 });
    const h = attachRateLimit(r);
    await h.execute({}, ok);
    const e = await h.execute({}, ok).catch((x) => x);
    expect(isRateLimitedError(e)).toBe(true);
    expect(e).toMatchObject({ scope: 'endpoint', retryAfterMs: 60_000 });
    expect(isNoHealthyEndpointError(e.cause)).toBe(true);
    vi.advanceTimersByTime(60_000);
    const upstream = await h.execute({}, async () => ({ status: 500 })).catch((x) => x);
    expect(isRateLimitedError(upstream)).toBe(false);
    expect(upstream.status).toBe(502);
  });
});

describe('enabled by hand', () => {
  it('setEndpointHealth(id, true) clears a learned 429 cooldown', async () => {
    const router = createRouter({
      endpoints: [
        { id: 'a', url: 'http://127.0.0.1:1/v1', apiKey: fakeKey('a') },
        { id: 'b', url: 'http://127.0.0.1:2/v1', apiKey: fakeKey('b'), priority: 2 },
      ],
    });
    const handle = attachRateLimit(router, { cooldownMs: 60_000 });
    await router.execute({}, async ({ endpoint }) => ({
      status: endpoint.id === 'a' ? 429 : 200,
      headers: {},
    }));
    // Core's own cooldown ends by hand; the limiter's learned one must end too.
    router.setEndpointHealth('a', true);
    expect(router.pick()!.endpoint.id).toBe('a');
    expect(handle.snapshot().a.cooldownUntil).toBeUndefined();
    handle.dispose();
  });
});
