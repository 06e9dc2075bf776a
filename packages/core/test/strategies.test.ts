import { describe, expect, it } from 'vitest';
import { createRouter, parseTags, registerStrategy, type Strategy, strategyNames } from '../src/index.js';
import { fastRandom } from '../src/internal.js';

/** A seeded PRNG (mulberry32) so distribution tests are repeatable. */
function seeded(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ep = (id: string, extra: object = {}) => ({
  id,
  url: `http://127.0.0.1:1/${id}`,
  apiKey: `sk-test-${id}-0123456789abcdef`,
  ...extra,
});

function counts(router: ReturnType<typeof createRouter>, n: number, req = {}) {
  const c: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const p = router.pick(req);
    const id = p?.endpoint.id ?? 'none';
    c[id] = (c[id] ?? 0) + 1;
  }
  return c;
}

describe('distributions through the router', () => {
  it('weighted-random follows weights within 3%', () => {
    const r = createRouter({
      endpoints: [ep('a', { weight: 1 }), ep('b', { weight: 3 }), ep('c', { weight: 6 })],
      strategy: 'weighted-random',
      random: seeded(7),
    });
    const c = counts(r, 100_000);
    expect(c.a / 100_000).toBeCloseTo(0.1, 1);
    expect(Math.abs(c.b / 100_000 - 0.3)).toBeLessThan(0.03);
    expect(Math.abs(c.c / 100_000 - 0.6)).toBeLessThan(0.03);
  });

  it.each(['weighted-random', 'priority'] as const)(
    '%s gives each of many unevenly weighted endpoints its share (alias table)',
    (strategy) => {
      // Fractional, tiny and large weights, so the table needs top-ups chained across several slots.
      const weights = [0.5, 1, 1, 2, 3, 5, 8, 13, 21, 0.25, 40, 1.25, 7];
      const total = weights.reduce((a, b) => a + b, 0);
      const r = createRouter({
        endpoints: weights.map((w, i) => ep(`e${i}`, { weight: w })),
        strategy,
        random: seeded(11),
      });
      const n = 400_000;
      const c = counts(r, n);
      weights.forEach((w, i) => {
        expect(Math.abs((c[`e${i}`] ?? 0) / n - w / total), `e${i}`).toBeLessThan(0.004);
      });
    },
  );
  it('weighted-random stays right across health changes and reloads (no stale cached weights)', () => {
    const r = createRouter({
      endpoints: [ep('a', { weight: 1 }), ep('b', { weight: 1 }), ep('c', { weight: 2 })],
      strategy: 'weighted-random',
      random: seeded(11),
    });
    counts(r, 1000);
    r.setEndpointHealth('c', false);
    const c1 = counts(r, 20_000);
    expect(c1.c).toBeUndefined();
    expect(Math.abs(c1.a / 20_000 - 0.5)).toBeLessThan(0.03);
    r.setEndpointHealth('c', true);
    r.reload({
      endpoints: [ep('a', { weight: 8 }), ep('b', { weight: 1 }), ep('c', { weight: 1 })],
      strategy: 'weighted-random',
      random: seeded(12),
    });
    const c2 = counts(r, 20_000);
    expect(Math.abs(c2.a / 20_000 - 0.8)).toBeLessThan(0.03);
  });

  it('round-robin is exact', () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b'), ep('c')], strategy: 'round-robin' });
    const seq = Array.from({ length: 9 }, () => r.pick()!.endpoint.id);
    expect(seq).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('priority only falls to group 2 when every endpoint of group 1 is unavailable', () => {
    const r = createRouter({
      endpoints: [ep('p1a'), ep('p1b'), ep('p2', { priority: 2 }), ep('p3', { priority: 3 })],
      random: seeded(1),
    });
    const c1 = counts(r, 2000);
    expect(Object.keys(c1).sort()).toEqual(['p1a', 'p1b']);
    expect(c1.p1a).toBeGreaterThan(800);
    r.setEndpointHealth('p1a', false);
    expect(counts(r, 200)).toEqual({ p1b: 200 });
    r.setEndpointHealth('p1b', false);
    expect(counts(r, 200)).toEqual({ p2: 200 });
    r.setEndpointHealth('p1a', true);
    expect(counts(r, 200)).toEqual({ p1a: 200 });
  });

  it('weight 0 drains an endpoint', () => {
    const r = createRouter({ endpoints: [ep('a', { weight: 0 }), ep('b')], strategy: 'round-robin' });
    expect(counts(r, 50)).toEqual({ b: 50 });
  });

  it('least-latency prefers the fastest measured endpoint and explores unmeasured ones first', async () => {
    const r = createRouter({
      endpoints: [ep('slow'), ep('fast')],
      strategy: 'least-latency',
      strategyOptions: { explorationRate: 0 },
    });
    // Far apart, so that a loaded machine's late timers cannot swap them.
    const delay: Record<string, number> = { slow: 250, fast: 1 };
    // Unmeasured first: both get measured.
    const seen = new Set<string>();
    for (let i = 0; i < 2; i++) {
      await r.execute({}, async ({ endpoint }) => {
        seen.add(endpoint.id);
        await new Promise((res) => setTimeout(res, delay[endpoint.id]));
        return 'ok';
      });
    }
    expect(seen).toEqual(new Set(['slow', 'fast']));
    expect(counts(r, 100)).toEqual({ fast: 100 });
  });

  it('least-busy spreads concurrent requests instead of piling onto one', async () => {
    const r = createRouter({
      endpoints: [ep('a'), ep('b'), ep('c'), ep('d')],
      strategy: 'least-busy',
      random: seeded(3),
    });
    const release: (() => void)[] = [];
    const running = Array.from({ length: 40 }, () =>
      r.execute({}, () => new Promise<string>((res) => release.push(() => res('ok')))),
    );
    await new Promise((res) => setTimeout(res, 0));
    const inflight = ['a', 'b', 'c', 'd'].map((id) => r.getStats(id)!.inFlight);
    expect(inflight.reduce((a, b) => a + b)).toBe(40);
    for (const n of inflight) expect(n).toBeGreaterThanOrEqual(7);
    for (const n of inflight) expect(n).toBeLessThanOrEqual(13);
    release.forEach((f) => f());
    await Promise.all(running);
    expect(['a', 'b', 'c', 'd'].map((id) => r.getStats(id)!.inFlight)).toEqual([0, 0, 0, 0]);
  });

  it('is model-aware: only endpoints serving the model (after mapping) are candidates', () => {
    const r = createRouter({
      endpoints: [
        ep('mini', { models: ['gpt-4o-mini'] }),
        ep('mapped', { modelMap: { 'gpt-3.5-turbo': 'gpt-4' } }),
        ep('all'),
      ],
      strategy: 'round-robin',
    });
    // An endpoint with a model map but no model list serves every model (mapping the listed ones).
    expect(counts(r, 30, { model: 'gpt-4o-mini' })).toEqual({ mini: 10, mapped: 10, all: 10 });
    const picks = Array.from({ length: 4 }, () => r.pick({ model: 'gpt-3.5-turbo' })!);
    expect(picks.map((p) => `${p.endpoint.id}:${p.upstreamModel}`)).toEqual([
      'mapped:gpt-4',
      'all:gpt-3.5-turbo',
      'mapped:gpt-4',
      'all:gpt-3.5-turbo',
    ]);
  });

  it('filters by tags', () => {
    const r = createRouter({
      endpoints: [ep('eu', { tags: ['eu'] }), ep('us', { tags: ['us'] })],
      strategy: 'round-robin',
    });
    expect(counts(r, 10, { tags: ['eu'] })).toEqual({ eu: 10 });
    expect(counts(r, 3, { tags: ['apac'] })).toEqual({ none: 3 });
    // The x-lb-tags header as lb-server and the openai adapter read it: spaces, empty parts, repeated headers.
    expect(parseTags(' eu, fast ,,')).toEqual(['eu', 'fast']);
    expect(parseTags(['eu', 'fast, gpu'])).toEqual(['eu', 'fast', 'gpu']);
    expect(counts(r, 4, { tags: parseTags('us ,') })).toEqual({ us: 4 });
  });

  it('refuses a request for tags no endpoint carries (400, nothing tried), but waits out an outage of those that do', async () => {
    const r = createRouter({
      endpoints: [ep('eu', { tags: ['eu', 'fast'] }), ep('us', { tags: ['us'] })],
      maxWaitMs: 0,
    });
    let tried = 0;
    const attempt = async () => {
      tried++;
      return { status: 200 };
    };
    const err = await r.execute({ model: 'm', tags: ['eu', 'us'] }, attempt).catch((e) => e);
    expect(err).toMatchObject({ status: 400, code: 'no_endpoint_with_tags' });
    expect(err.message).toBe('No endpoint serving "m" carries all of the tags ["eu","us"]');
    expect(tried).toBe(0);
    r.setEndpointHealth('eu', false);
    const down = await r.execute({ tags: ['fast'] }, attempt).catch((e) => e);
    expect(down.status).toBe(503);
    r.setEndpointHealth('eu', true);
    await r.execute({ tags: ['fast'] }, attempt);
    await r.execute({ tags: [] }, attempt);
    expect(tried).toBe(2);
  });

  it('model groups route an exposed name to backends with their own weights and upstream names', () => {
    const r = createRouter({
      endpoints: [ep('openai'), ep('azure'), ep('proxy')],
      models: {
        smart: {
          strategy: 'round-robin',
          backends: [
            { endpoint: 'openai', model: 'gpt-4o' },
            { endpoint: 'azure', model: 'my-gpt4o-deployment' },
          ],
        },
      },
    });
    const picks = Array.from({ length: 4 }, () => r.pick({ model: 'smart' })!);
    expect(picks.map((p) => `${p.endpoint.id}:${p.upstreamModel}`)).toEqual([
      'openai:gpt-4o',
      'azure:my-gpt4o-deployment',
      'openai:gpt-4o',
      'azure:my-gpt4o-deployment',
    ]);
    expect(r.models()).toContain('smart');
  });
});

describe('plugins', () => {
  it('a registered strategy is selectable by name and used end to end', async () => {
    const calls: number[] = [];
    registerStrategy('last-one', () => ({
      name: 'last-one',
      pick: (c) => {
        calls.push(c.length);
        return c[c.length - 1];
      },
    }));
    expect(strategyNames()).toContain('last-one');
    const r = createRouter({ endpoints: [ep('a'), ep('b'), ep('c')], strategy: 'last-one' });
    const used: string[] = [];
    await r.execute({}, async ({ endpoint }) => {
      used.push(endpoint.id);
      return { status: used.length < 2 ? 500 : 200 };
    });
    expect(used).toEqual(['c', 'b']);
    expect(calls).toEqual([3, 2]);
    expect(r.strategy).toBe('last-one');
  });

  it('a strategy instance can be passed directly', () => {
    const mine: Strategy = { name: 'mine', pick: (c) => c[1] ?? c[0] };
    const r = createRouter({ endpoints: [ep('a'), ep('b')], strategy: mine });
    expect(r.pick()!.endpoint.id).toBe('b');
  });

  it('an unknown strategy name is a clear error', () => {
    expect(() => createRouter({ endpoints: [ep('a')], strategy: 'fastest' })).toThrow(
      /unknown strategy "fastest"; expected one of .*priority/,
    );
  });
});

describe('fastRandom', () => {
  it('is uniform enough to spread load and repeatable from a seed', () => {
    const a = fastRandom(7);
    const b = fastRandom(7);
    const buckets = new Array(10).fill(0);
    // Checked in the loop without an `expect` per draw (200,000 of them took seconds on a loaded machine).
    let differ = 0;
    let outside = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = a();
      if (x !== b()) differ++;
      if (!(x >= 0 && x < 1)) outside++;
      else buckets[Math.floor(x * 10)]++;
    }
    expect({ differ, outside }).toEqual({ differ: 0, outside: 0 });
    for (const n of buckets) expect(Math.abs(n - 10_000)).toBeLessThan(500);
    expect(fastRandom(1)()).not.toBe(fastRandom(2)());
  });
});
