import { fakeKey, startRedis, type TestRedis } from '@lb/testing';
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Budgets,
  KeyRing,
  MemoryBudgetStore,
  PriceTable,
  RedisBudgetStore,
  SpendError,
  tokensOf,
} from '../src/index.js';

const T0 = Date.UTC(2026, 11, 7, 21, 0); // 21:00 UTC, 3 h before the day ends

function ring() {
  return new KeyRing([
    { name: 'team-a', key: fakeKey('a'), budgetUsdDay: 5, budgetUsdMonth: 100 },
    { name: 'team-b', key: fakeKey('b'), budgetUsdDay: 5 },
    { name: 'tokens', key: fakeKey('t'), budgetTokensDay: 1000 },
    { name: 'free', key: fakeKey('f') },
  ]);
}

describe('Budgets (memory)', () => {
  it('admits while money is left, then refuses with 429 budget_exceeded naming the budget and its reset', () => {
    let now = T0;
    const keys = ring();
    const a = keys.byName('team-a')!;
    const b = keys.byName('team-b')!;
    const budgets = new Budgets({ now: () => now });
    // Three requests of $2 each: admitted at $0, $2, $4 spent (the third overshoots by one request).
    for (let i = 0; i < 3; i++) {
      expect(budgets.admit(a, 1, 100)).toBeUndefined();
      budgets.settle(a, 1, 100, 2, 150);
    }
    const e = budgets.admit(a, 1, 100) as SpendError;
    expect(e).toBeInstanceOf(SpendError);
    expect(e.status).toBe(429);
    expect(e.code).toBe('budget_exceeded');
    expect(e.type).toBe('insufficient_quota');
    expect(e.budget).toBe('usd_day');
    expect(e.resetAt).toBe(Date.UTC(2026, 11, 8));
    expect(e.retryAfterMs).toBe(3 * 3_600_000);
    expect(e.message).toBe(
      'Budget exceeded for key "team-a": USD per day ($5) is spent. It resets at 2026-12-08T00:00:00.000Z (in 3h 0m).',
    );
    expect(e.toOpenAIError().error).toMatchObject({ code: 'budget_exceeded', type: 'insufficient_quota' });
    // Another key is unaffected.
    expect(budgets.admit(b, 1, 100)).toBeUndefined();
    now += 60_000;
    expect((budgets.admit(a, 0, 0) as SpendError).retryAfterMs).toBe(3 * 3_600_000 - 60_000);
  });

  it('rolls over at UTC midnight: a new day, a new daily budget; the month keeps counting', async () => {
    let now = T0;
    const a = ring().byName('team-a')!;
    const budgets = new Budgets({ now: () => now });
    expect(budgets.admit(a, 6, 0)).toBeUndefined();
    expect((budgets.admit(a, 0, 0) as SpendError).budget).toBe('usd_day');
    now = Date.UTC(2026, 11, 8) - 1;
    expect(budgets.admit(a, 0, 0)).toBeInstanceOf(SpendError);
    now = Date.UTC(2026, 11, 8);
    expect(budgets.admit(a, 1, 0)).toBeUndefined();
    const snap = await budgets.snapshot(a);
    expect(snap.usdDay).toEqual({ spent: 1, limit: 5, resetAt: Date.UTC(2026, 11, 9) });
    expect(snap.usdMonth).toEqual({ spent: 7, limit: 100, resetAt: Date.UTC(2027, 0, 1) });
  });

  it('settles a request admitted before midnight in the windows that hold its estimate', async () => {
    let now = Date.UTC(2026, 11, 7, 23, 59, 59);
    const a = ring().byName('team-a')!; // $5 a day, $100 a month
    const budgets = new Budgets({ now: () => now });
    const admittedAt = now;
    expect(budgets.admit(a, 1, 0)).toBeUndefined();
    now = Date.UTC(2026, 11, 8, 0, 0, 1);
    budgets.settle(a, 1, 0, 3, 0, admittedAt);
    const snap = await budgets.snapshot(a);
    // The new day starts clean (yesterday's window is over); the month holds the real cost.
    expect(snap.usdDay?.spent).toBe(0);
    expect(snap.usdMonth?.spent).toBe(3);
  });

  it('the monthly budget resets on the first of the next month, UTC', () => {
    let now = Date.UTC(2026, 11, 31, 23, 59);
    const k = new KeyRing([{ name: 'm', key: fakeKey('m'), budgetUsdMonth: 10 }]).byName('m')!;
    const budgets = new Budgets({ now: () => now });
    expect(budgets.admit(k, 10, 0)).toBeUndefined();
    const e = budgets.admit(k, 0, 0) as SpendError;
    expect(e.budget).toBe('usd_month');
    expect(e.resetAt).toBe(Date.UTC(2027, 0, 1));
    expect(e.message).toContain('(in 1m)');
    now = Date.UTC(2027, 0, 1);
    expect(budgets.admit(k, 0, 0)).toBeUndefined();
  });

  it('counts tokens per day from real usage; refunds a failed request', () => {
    const keys = ring();
    const t = keys.byName('tokens')!;
    const store = new MemoryBudgetStore({ now: () => T0 });
    const budgets = new Budgets({ store, now: () => T0 });
    const prices = new PriceTable();
    const usage = { prompt_tokens: 400, completion_tokens: 200 };
    expect(budgets.admit(t, undefined, 500)).toBeUndefined();
    budgets.settle(t, undefined, 500, prices.costOf(usage, 'gpt-4o-mini'), tokensOf(usage));
    expect(budgets.admit(t, undefined, 500)).toBeUndefined();
    budgets.settle(t, undefined, 500, undefined, 0); // failed: refund
    expect(budgets.admit(t, undefined, 300)).toBeUndefined(); // 600 spent: admitted, 900 with the reservation
    expect(budgets.admit(t, undefined, 300)).toBeUndefined(); // 900 < 1000: admitted, 1200
    const e = budgets.admit(t, undefined, 300) as SpendError;
    expect(e.budget).toBe('tokens_day');
    expect(e.message).toContain('tokens per day (1000 tokens) is spent');
  });

  it("a key's tpm: tokens per minute from real usage, 429 rate_limit_exceeded to the next minute, then free", () => {
    let now = T0 + 15_000; // 21:00:15
    const k = new KeyRing([{ name: 'tpm', key: fakeKey('tpm'), tpm: 100 }]).byName('tpm')!;
    expect(k.hasBudget).toBe(true);
    const budgets = new Budgets({ now: () => now });
    expect(budgets.admit(k, undefined, 10)).toBeUndefined();
    budgets.settle(k, undefined, 10, undefined, 120, now); // the answer used 120 tokens
    const e = budgets.admit(k, undefined, 10) as SpendError;
    expect(e).toBeInstanceOf(SpendError);
    expect(e.status).toBe(429);
    expect(e.code).toBe('rate_limit_exceeded');
    expect(e.toOpenAIError().error.type).toBe('tokens');
    expect(e.budget).toBe('tokens_minute');
    expect(e.message).toContain('tokens per minute (tpm 100)');
    expect(e.retryAfterMs).toBe(45_000);
    now = T0 + 60_000; // 21:01:00: a new minute
    expect(budgets.admit(k, undefined, 10)).toBeUndefined();
    budgets.settle(k, undefined, 10, undefined, 50, T0 + 60_000);
    expect(budgets.admit(k, undefined, 10)).toBeUndefined(); // 50 + 10 of 100
  });

  it('a reloaded key ring with a new budget applies at once, keeping what was spent', () => {
    const budgets = new Budgets({ now: () => T0 });
    const before = ring().byName('team-b')!; // $5
    expect(budgets.admit(before, 5, 0)).toBeUndefined();
    expect(budgets.admit(before, 0, 0)).toBeInstanceOf(SpendError);
    const after = new KeyRing([{ name: 'team-b', key: fakeKey('b'), budgetUsdDay: 8 }]).byName('team-b')!;
    expect(budgets.admit(after, 3, 0)).toBeUndefined(); // $5 of $8 spent: admitted, then $8
    expect((budgets.admit(after, 0, 0) as SpendError).message).toContain('($8)');
  });

  it('keys without budgets touch no counter', () => {
    const store = new MemoryBudgetStore();
    const budgets = new Budgets({ store });
    const free = ring().byName('free')!;
    expect(budgets.admit(free, 1e9, 1e9)).toBeUndefined();
    budgets.settle(free, 1e9, 1e9, 1, 1);
    expect(store.size).toBe(0);
  });
});

describe('Budgets (Redis, two replicas)', () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const client = () => {
    const c = new Redis(redis.url, { enableOfflineQueue: false, lazyConnect: true, maxRetriesPerRequest: 0 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await redis?.stop();
  });

  it('two replicas sharing Redis hold a key daily budget to within one request each', async () => {
    const c1 = client();
    const c2 = client();
    await Promise.all([c1.connect(), c2.connect()]);
    const a = ring().byName('team-a')!;
    const b = ring().byName('team-b')!;
    const r1 = new Budgets({
      store: new RedisBudgetStore(c1, { prefix: 't1:' }),
      now: () => T0,
      replicas: 2,
    });
    const r2 = new Budgets({
      store: new RedisBudgetStore(c2, { prefix: 't1:' }),
      now: () => T0,
      replicas: 2,
    });
    // Each request: estimate $0.10, real $0.30. The budget is $5.
    const cost = 0.3;
    let admitted = 0;
    const run = async (r: Budgets) => {
      for (;;) {
        const v = await r.admit(a, 0.1, 0);
        if (v) return v;
        admitted++;
        await r.settle(a, 0.1, 0, cost, 0);
      }
    };
    // Both replicas at once, each with several requests in flight.
    const refusals = await Promise.all([run(r1), run(r1), run(r2), run(r2)]);
    for (const e of refusals) expect(e.code).toBe('budget_exceeded');
    const spent = admitted * cost;
    // At least the budget (nobody refused early), and past it by at most one request per request in flight.
    expect(spent).toBeGreaterThanOrEqual(5);
    expect(spent).toBeLessThanOrEqual(5 + 4 * cost + 1e-9);
    const snap = await r1.snapshot(a);
    expect(snap.usdDay?.spent).toBeCloseTo(spent, 9);
    expect((await r2.snapshot(a)).usdDay?.spent).toBeCloseTo(spent, 9);
    // Another key of the same replicas is unaffected.
    expect(await r2.admit(b, 0.1, 0)).toBeUndefined();
  });

  it('one replica at a time: the overshoot is at most one request', async () => {
    const c1 = client();
    const c2 = client();
    await Promise.all([c1.connect(), c2.connect()]);
    const a = ring().byName('team-a')!;
    const r1 = new Budgets({ store: new RedisBudgetStore(c1, { prefix: 't2:' }), now: () => T0 });
    const r2 = new Budgets({ store: new RedisBudgetStore(c2, { prefix: 't2:' }), now: () => T0 });
    let admitted = 0;
    for (let i = 0; ; i++) {
      const r = i % 2 ? r2 : r1;
      if (await r.admit(a, 0.7, 0)) break;
      admitted++;
      await r.settle(a, 0.7, 0, 0.7, 0);
    }
    // $0, 0.7, … 4.9 admitted: 8 requests, $5.60; the ninth is refused.
    expect(admitted).toBe(8);
    expect(await r1.admit(a, 0, 0)).toBeInstanceOf(SpendError);
  });

  it('counters expire at the end of their window in Redis', async () => {
    const c = client();
    await c.connect();
    const a = ring().byName('team-a')!;
    const now = Date.now();
    const r = new Budgets({ store: new RedisBudgetStore(c, { prefix: 't3:' }), now: () => now });
    await r.admit(a, 1, 0);
    const keys = await c.keys('t3:*');
    expect(keys.length).toBe(2);
    for (const k of keys) {
      const at = await c.pexpiretime(k);
      expect(at === Math.ceil(now / 86_400_000) * 86_400_000 || k.includes(':m:')).toBe(true);
      expect(at).toBeGreaterThan(now);
    }
  });

  it('a Redis that hangs (CLIENT PAUSE) sends admissions to the local share once commandTimeout fires', async () => {
    const admin = client();
    const c = new Redis(redis.url, {
      enableOfflineQueue: false,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      commandTimeout: 100,
    });
    c.on('error', () => {});
    clients.push(c);
    await Promise.all([admin.connect(), c.connect()]);
    const k = new KeyRing([{ name: 'hang', key: fakeKey('h'), budgetUsdDay: 4 }]).byName('hang')!;
    const r = new Budgets({ store: new RedisBudgetStore(c, { prefix: 't5:' }), now: () => T0, replicas: 2 });
    expect(await r.admit(k, 1, 0)).toBeUndefined(); // shared: $1 of $4; this replica's share of the rest: $1.50
    // WRITE: scripts wait (they may write), the admin's UNPAUSE does not.
    await admin.call('CLIENT', 'PAUSE', '30000', 'WRITE');
    try {
      expect(await r.admit(k, 1, 0)).toBeUndefined(); // local: $1 of $1.50
      expect(await r.admit(k, 1, 0)).toBeUndefined(); // local: $1 < $1.50, admitted: $2
      expect(((await r.admit(k, 1, 0)) as SpendError).code).toBe('budget_exceeded');
      expect(r.storeErrors).toBe(3);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE');
    }
  });

  it('while Redis is down, each replica admits on its local share, and pays what it owes when Redis is back', async () => {
    const own = await startRedis();
    const c1 = new Redis(own.url, {
      enableOfflineQueue: false,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => 50,
    });
    c1.on('error', () => {});
    clients.push(c1);
    await c1.connect();
    const a = ring().byName('team-b')!; // $5 a day
    const errors: unknown[] = [];
    const r1 = new Budgets({
      store: new RedisBudgetStore(c1),
      now: () => T0,
      replicas: 2,
      onStoreError: (e) => errors.push(e),
    });
    expect(await r1.admit(a, 1, 0)).toBeUndefined(); // shared: $1 spent; $4 left, $2 of it this replica's share
    const port = own.port;
    await own.stop();
    let local = 0;
    while (!(await r1.admit(a, 0.5, 0))) local++;
    expect(local).toBe(4); // $2 share / $0.50
    expect(r1.storeErrors).toBeGreaterThan(0);
    expect(errors.length).toBe(r1.storeErrors);
    // Redis comes back (empty): what was admitted locally is sent with the next call that succeeds.
    const back = await startRedis({ port });
    try {
      if (c1.status !== 'ready') await new Promise((r) => c1.once('ready', r));
      await r1.admit(a, 0, 0);
      await waitFor(async () => Number(await c1.get(`lb:spend:team-b:usd:d:20261207`)) === 2);
    } finally {
      await back.stop();
    }
  });
});

async function waitFor(cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  throw new Error('condition not met');
}
