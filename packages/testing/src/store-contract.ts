import type { BucketSpec, Store, WindowSpec } from '@lb/ratelimit';
import { describe, expect, it } from 'vitest';

const spec: BucketSpec = { capacity: 5, refillPerMs: 5 / 1000 };
const fixed: WindowSpec = { limit: 3, windowMs: 1000, sliding: false };

/**
 * The contract every rate-limit {@link Store} runs (the memory store, Redis, users' own), hono-router style.
 * `create` returns an empty store for each test: for a shared server, a store under a fresh key prefix. Times are
 * the `now` arguments the contract passes (epoch ms from 0), so a store must read no clock of its own.
 *
 * @example
 * runStoreContract({ name: 'MyStore', create: () => new MyStore({ prefix: `t${Math.random()}:` }) });
 */
export function runStoreContract(opts: { name: string; create: () => Store | Promise<Store> }): void {
  const { name } = opts;
  const create = opts.create;
  describe(`Store contract: ${name}`, () => {
    it('buckets start full, take atomically and refill lazily up to capacity', async () => {
      const s = await create();
      expect(await s.peek('k', spec, 0)).toBe(5);
      expect(await s.take('k', 3, spec, 0)).toEqual({ ok: true, tokens: 2 });
      expect(await s.take('k', 3, spec, 0)).toEqual({ ok: false, tokens: 2 });
      expect(await s.peek('k', spec, 200)).toBeCloseTo(3);
      expect(await s.peek('k', spec, 60_000)).toBe(5);
      expect(await s.peek('other', spec, 0)).toBe(5);
    });

    it('adjust adds tokens or a debt, capped at capacity', async () => {
      const s = await create();
      expect(await s.adjust('k', -8, spec, 0)).toBe(-3);
      expect(await s.take('k', 1, spec, 0)).toMatchObject({ ok: false });
      expect(await s.peek('k', spec, 1000)).toBeCloseTo(2);
      expect(await s.adjust('k', 100, spec, 1000)).toBe(5);
    });

    it('cooldowns only extend and expire on their own', async () => {
      const s = await create();
      expect(await s.getCooldown('c', 0)).toBeUndefined();
      await s.setCooldown('c', { until: 100, reason: 'first' });
      await s.setCooldown('c', { until: 50, reason: 'shorter' });
      expect(await s.getCooldown('c', 10)).toEqual({ until: 100, reason: 'first' });
      await s.setCooldown('c', { until: 200, reason: 'longer' });
      expect(await s.getCooldown('c', 150)).toEqual({ until: 200, reason: 'longer' });
      expect(await s.getCooldown('c', 200)).toBeUndefined();
    });

    it('windows count allowed hits only and reset at the window edge', async () => {
      const s = await create();
      const r = [];
      for (let i = 0; i < 5; i++) r.push(await s.hit('w', fixed, 2100 + i));
      expect(r.map((x) => x.allowed)).toEqual([true, true, true, false, false]);
      expect(r[4]).toMatchObject({ count: 3, resetAt: 3000, retryAfterMs: 896 });
      expect(await s.hit('w', fixed, 3000)).toMatchObject({ allowed: true, count: 1, retryAfterMs: 0 });
    });

    it('record counts a batch admitted elsewhere and says what a next request gets', async () => {
      const s = await create();
      if (!s.record) return; // optional: a store without it gets one hit per request from the local view
      expect(await s.record('r', fixed, 2100, 2)).toMatchObject({ allowed: true, count: 3, resetAt: 3000 });
      expect(await s.record('r', fixed, 2101, 2)).toMatchObject({
        allowed: false,
        count: 4,
        retryAfterMs: 899,
      });
      expect(await s.hit('r', fixed, 2102)).toMatchObject({ allowed: false, count: 4 });
      expect(await s.hit('r', fixed, 3000)).toMatchObject({ allowed: true, count: 1 });
    });

    it('delete forgets a key', async () => {
      const s = await create();
      await s.take('k', 5, spec, 0);
      await s.setCooldown('k', { until: 100, reason: 'x' });
      await s.delete('k');
      expect(await s.peek('k', spec, 0)).toBe(5);
      expect(await s.getCooldown('k', 0)).toBeUndefined();
    });
  });
}
