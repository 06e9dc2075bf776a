// Selector benchmark: ns and bytes allocated per `router.pick` over @lb/core, for every built-in strategy and pool
// size, without a guard, with a guard that keeps its own clock (as the breaker does), with one that reads the
// router's clock at every pick, with the real @lb/ratelimit attached, and while weights are being changed by `reload`.
import { createRouter } from '@lb/core';
import { attachRateLimit } from '@lb/ratelimit';
import { Bench } from 'tinybench';
import { median, round } from './stats.mjs';

export const STRATEGIES = [
  'priority',
  'round-robin',
  'weighted-random',
  'random',
  'least-latency',
  'least-busy',
];
export const SIZES = [1, 4, 16, 64, 256, 1024];
export const MODES = ['plain', 'guard', 'clock-guard', 'ratelimit', 'reload'];
/** What each mode measures, for tables. */
export const MODE_TITLES = {
  plain: 'no guard',
  guard: "one guard with its own clock (the breaker's shape: `usesNow: false`)",
  'clock-guard': "one guard reading the router's clock at every pick",
  ratelimit: '@lb/ratelimit attached, every endpoint with a requests-per-second budget it has not spent',
  reload: 'weights reloaded every 10k picks',
};
/** Picks per timed sample (one pick is below the timer's resolution). */
const BATCH = 1000;
/** In `reload` mode the weights change (a full `router.reload`) once every this many picks. */
export const RELOAD_EVERY = 10_000;

function endpoints(n, salt = 0) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = {
      id: `ep-${i}`,
      url: `http://127.0.0.1:${10_000 + i}/v1`,
      apiKey: `sk-bench-${i}-0123456789abcdef`,
      weight: 1 + ((i + salt) % 4),
      priority: 1,
    };
  }
  return out;
}

/**
 * A guard shaped like the breaker's: a per-endpoint state lookup that admits, reading a clock of its own only for an
 * endpoint it holds back (`usesNow: false`). With `usesNow`, a guard that compares a deadline with the `now` the
 * router hands it, so the router reads its clock at every pick (the rate limiter did until it learnt to decide from
 * the tokens its buckets held: the `ratelimit` mode).
 */
function benchGuard(usesNow) {
  const state = new Map();
  return usesNow
    ? {
        name: 'bench-clock-guard',
        admit(endpoint, _req, now) {
          const s = state.get(endpoint.id);
          return s === undefined || s.until <= now ? true : { reason: 'spent', until: s.until };
        },
      }
    : {
        name: 'bench-guard',
        usesNow: false,
        admit(endpoint) {
          const s = state.get(endpoint.id);
          return s === undefined || s.until <= Date.now() ? true : { reason: 'open', until: s.until };
        },
      };
}

/**
 * Builds one case: a router of `size` endpoints with `strategy`, and a function doing BATCH picks.
 * Latency-aware strategies get measured endpoints first (a few executes), so they compare real numbers.
 */
async function makeCase(strategy, size, mode, inject) {
  let salt = 0;
  const eps = endpoints(size);
  // Budgets the picks never spend (a pick takes no token; the warm-up's executes take a few).
  if (mode === 'ratelimit') for (const e of eps) e.limits = { rps: 1e9 };
  const config = { endpoints: eps, strategy, maxRetries: 0, ...inject };
  const router = createRouter(config);
  if (mode === 'guard' || mode === 'clock-guard') router.addGuard(benchGuard(mode === 'clock-guard'));
  if (mode === 'ratelimit') attachRateLimit(router);
  for (let i = 0; i < Math.min(size, 64) * 2; i++) {
    await router.execute({ model: 'gpt-4o-mini' }, async () => ({ status: 200, headers: {} }));
  }
  const req = { model: 'gpt-4o-mini' };
  let picks = 0;
  let sink = 0;
  let missed = 0;
  const configs = [endpoints(size, 1), endpoints(size, 2)].map((e) => ({ ...config, endpoints: e }));
  const run =
    mode === 'reload'
      ? () => {
          for (let i = 0; i < BATCH; i++) {
            if (++picks % RELOAD_EVERY === 0) router.reload(configs[salt++ & 1]);
            const c = router.pick(req);
            if (c !== undefined) sink ^= c.index + 1;
            else missed++;
          }
        }
      : () => {
          for (let i = 0; i < BATCH; i++) {
            const c = router.pick(req);
            if (c !== undefined) sink ^= c.index + 1;
            else missed++;
          }
        };
  return { router, run, sink: () => sink, missed: () => missed };
}

/**
 * Bytes allocated per call of `batch` (each doing BATCH picks), from `process.memoryUsage().heapUsed` deltas over
 * many slices. A slice during which the young generation was collected shows a negative or undercounted delta, so
 * the median over slices is taken. Needs no --expose-gc.
 */
function bytesPerPick(batch, slices) {
  const perSlice = Math.max(1, Math.floor(RELOAD_EVERY / BATCH) * 2);
  const deltas = [];
  for (let s = 0; s < slices; s++) {
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < perSlice; i++) batch();
    const after = process.memoryUsage().heapUsed;
    const d = after - before;
    if (d >= 0) deltas.push(d / (perSlice * BATCH));
  }
  return deltas.length ? Math.max(0, median(deltas)) : Number.NaN;
}

/**
 * Runs the selector benchmark. Returns one row per strategy × size × mode with `nsPerPick` and `bytesPerPick`.
 * @param {{ strategies?: string[], sizes?: number[], modes?: string[], timeMs?: number, slices?: number, random?: () => number, now?: () => number, log?: (s: string) => void }} [opts]
 */
export async function runSelectorBench(opts = {}) {
  const strategies = opts.strategies ?? STRATEGIES;
  const sizes = opts.sizes ?? SIZES;
  const modes = opts.modes ?? MODES;
  const timeMs = opts.timeMs ?? 300;
  const slices = opts.slices ?? 21;
  // Injected clock/randomness (tests use them to separate the router's own allocations from boxed doubles).
  const inject = {};
  if (opts.random) inject.random = opts.random;
  if (opts.now) inject.now = opts.now;
  const rows = [];
  for (const mode of modes) {
    for (const strategy of strategies) {
      for (const size of sizes) {
        const c = await makeCase(strategy, size, mode, inject);
        const bench = new Bench({ time: timeMs, warmupTime: Math.min(100, timeMs / 2) });
        bench.add('pick', c.run);
        await bench.run();
        const r = bench.tasks[0].result;
        const nsPerPick = r && 'latency' in r ? (r.latency.p50 * 1e6) / BATCH : Number.NaN;
        const bytes = bytesPerPick(c.run, slices);
        rows.push({
          strategy,
          endpoints: size,
          mode,
          nsPerPick: round(nsPerPick, 1),
          bytesPerPick: round(bytes, 2),
          picked: c.missed() === 0,
        });
        opts.log?.(
          `  ${mode.padEnd(11)} ${strategy.padEnd(15)} ${String(size).padStart(5)}  ${round(nsPerPick, 1)} ns  ${round(bytes, 2)} B`,
        );
      }
    }
  }
  return rows;
}
