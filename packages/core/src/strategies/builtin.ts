import { ConfigError } from '../errors.js';
import { type FastRandom, U30_SCALE } from '../random.js';
import type { Candidate, PickContext, Strategy, StrategyFactory, StrategyOptions } from '../strategy.js';

/**
 * `random` as integer draws in [0, 2^30): a {@link FastRandom}'s own `u30` (the router's default), else a scaling of
 * `random()`. Draw sites compute `u30() * U30_SCALE` in their own body, so the fraction never crosses a call
 * boundary, where V8 would box it (16 B per pick).
 */
function integerDraws(random: () => number): () => number {
  return (random as Partial<FastRandom>).u30 ?? (() => (random() * 0x40000000) >>> 0);
}

function weightedIn(c: readonly Candidate[], from: number, to: number, r: number): Candidate | undefined {
  let total = 0;
  for (let i = from; i < to; i++) total += c[i].weight;
  if (total <= 0) return undefined;
  let x = r * total;
  for (let i = from; i < to; i++) {
    x -= c[i].weight;
    if (x < 0) return c[i];
  }
  return c[to - 1];
}

/**
 * Walker's alias table over `c[0..end)`, built once per stable candidate list (cached by array identity): a weighted
 * pick is then one random draw, one multiply and one comparison, whatever the number of endpoints (Vose's method).
 */
class WeightIndex {
  #arr: readonly Candidate[] | undefined;
  #end = 0;
  #total = 0;
  /** Probability of keeping slot i rather than taking its alias. */
  #keep = new Float64Array(0);
  #alias = new Int32Array(0);
  readonly #u30: () => number;

  constructor(random: () => number) {
    this.#u30 = integerDraws(random);
  }

  #build(c: readonly Candidate[], end: number): void {
    this.#arr = c;
    this.#end = end;
    if (this.#keep.length < end) {
      this.#keep = new Float64Array(end);
      this.#alias = new Int32Array(end);
    }
    const keep = this.#keep;
    const alias = this.#alias;
    let total = 0;
    for (let i = 0; i < end; i++) total += Math.max(c[i].weight, 0);
    this.#total = total;
    if (!(total > 0)) return;
    // Scaled weights (mean 1); slots under 1 are topped up from one slot over 1.
    const small: number[] = [];
    const large: number[] = [];
    for (let i = 0; i < end; i++) {
      const w = Math.max(c[i].weight, 0);
      keep[i] = (w * end) / total;
      alias[i] = i;
      (keep[i] < 1 ? small : large).push(i);
    }
    while (small.length && large.length) {
      const s = small.pop() as number;
      const l = large[large.length - 1];
      alias[s] = l;
      keep[l] -= 1 - keep[s];
      if (keep[l] < 1) small.push(large.pop() as number);
    }
    // Rounding leftovers keep themselves.
    for (const i of large) keep[i] = 1;
    for (const i of small) keep[i] = 1;
  }

  pick(c: readonly Candidate[], end: number): Candidate | undefined {
    if (c !== this.#arr || end !== this.#end) this.#build(c, end);
    if (!(this.#total > 0)) return undefined;
    const x = this.#u30() * U30_SCALE * end;
    const i = x | 0;
    return x - i < this.#keep[i] ? c[i] : c[this.#alias[i]];
  }
}

/** Picks by weight: an endpoint with weight 3 gets three times the traffic of one with weight 1. */
export const weightedRandom: StrategyFactory = ({ random }) => {
  const index = new WeightIndex(random);
  const u30 = integerDraws(random);
  return {
    name: 'weighted-random',
    pick: (c, ctx) => (ctx?.stable ? index.pick(c, c.length) : weightedIn(c, 0, c.length, u30() * U30_SCALE)),
  };
};

/** Uniformly at random, ignoring weights. */
export const randomStrategy: StrategyFactory = ({ random }) => {
  const u30 = integerDraws(random);
  return {
    name: 'random',
    pick: (c) => (c.length ? c[Math.floor(u30() * U30_SCALE * c.length)] : undefined),
  };
};

/**
 * Exact round-robin over the available candidates. The cursor counts picks, so with a fixed set every endpoint
 * gets exactly its turn.
 */
export const roundRobin: StrategyFactory = () => {
  let cursor = 0;
  return {
    name: 'round-robin',
    pick(c) {
      if (!c.length) return undefined;
      const i = cursor % c.length;
      cursor = (cursor + 1) % 1_000_000_007;
      return c[i];
    },
  };
};

/**
 * Strict priority (failover): only the best priority group present among the candidates is considered; traffic
 * is spread within it by weight (or round-robin). A lower group gets traffic only while every endpoint of the better
 * groups is unavailable. Candidates arrive sorted by priority, so the group is a prefix.
 */
export const priority: StrategyFactory = ({ random, withinGroup }) => {
  const u30 = integerDraws(random);
  let cursor = 0;
  const index = new WeightIndex(random);
  let groupOf: readonly Candidate[] | undefined;
  let groupEnd = 0;
  return {
    name: 'priority',
    pick(c, ctx) {
      const n = c.length;
      if (!n) return undefined;
      let end: number;
      if (ctx?.stable && c === groupOf) end = groupEnd;
      else {
        const p = c[0].priority;
        end = 1;
        while (end < n && c[end].priority === p) end++;
        if (ctx?.stable) {
          groupOf = c;
          groupEnd = end;
        }
      }
      if (end === 1) return c[0];
      if (withinGroup === 'round-robin') return c[cursor++ % end];
      return (ctx?.stable ? index.pick(c, end) : weightedIn(c, 0, end, u30() * U30_SCALE)) ?? c[0];
    },
  };
};

/**
 * Lowest EWMA latency wins. Endpoints never measured are tried first, and with probability `explorationRate`
 * (default 5%) a random candidate is picked, so a recovered or slow-then-fast endpoint gets measured again.
 */
export const leastLatency: StrategyFactory = ({ random, explorationRate = 0.05 }) => {
  const u30 = integerDraws(random);
  return {
    name: 'least-latency',
    pick(c) {
      const n = c.length;
      if (!n) return undefined;
      if (n > 1 && u30() * U30_SCALE < explorationRate) return c[Math.floor(u30() * U30_SCALE * n)];
      let best = c[0];
      let bestLat = best.stats.latencySamples === 0 ? -1 : best.stats.ewmaLatencyMs;
      for (let i = 1; i < n; i++) {
        const s = c[i].stats;
        const lat = s.latencySamples === 0 ? -1 : s.ewmaLatencyMs;
        if (lat < bestLat) {
          best = c[i];
          bestLat = lat;
        }
      }
      return best;
    },
  };
};

/**
 * Fewest requests in flight, by power of two choices: two distinct random candidates are compared and the less
 * busy one wins (ties: lower latency, then the first drawn). This spreads load like a full scan would, without
 * piling every request onto the one endpoint that looked idle a moment ago.
 */
export const leastBusy: StrategyFactory = ({ random }) => {
  const u30 = integerDraws(random);
  return {
    name: 'least-busy',
    pick(c) {
      const n = c.length;
      if (n <= 1) return c[0];
      // Two draws from one: the low and the high 15 bits of a 30-bit integer (pools stay far below 2^15).
      let i: number;
      let j: number;
      if (n <= 0x8000) {
        const u = u30();
        i = ((u & 0x7fff) * n) >>> 15;
        j = ((u >>> 15) * (n - 1)) >>> 15;
      } else {
        i = Math.floor(u30() * U30_SCALE * n);
        j = Math.floor(u30() * U30_SCALE * (n - 1));
      }
      if (j >= i) j++;
      const a = c[i];
      const b = c[j];
      const fa = a.stats.inFlight / (a.weight || 1);
      const fb = b.stats.inFlight / (b.weight || 1);
      if (fa !== fb) return fa < fb ? a : b;
      return b.stats.ewmaLatencyMs < a.stats.ewmaLatencyMs ? b : a;
    },
  };
};

/** Names of the built-in strategies. */
export type BuiltinStrategyName =
  | 'priority'
  | 'round-robin'
  | 'weighted-random'
  | 'random'
  | 'least-latency'
  | 'least-busy';

const BUILTINS: ReadonlyArray<readonly [string, StrategyFactory]> = [
  ['priority', priority],
  ['failover', priority],
  ['round-robin', roundRobin],
  ['weighted-random', weightedRandom],
  ['weighted', weightedRandom],
  ['random', randomStrategy],
  ['least-latency', leastLatency],
  ['latency', leastLatency],
  ['least-busy', leastBusy],
  ['least-connections', leastBusy],
];

/**
 * Strategies by name, one map per process: a CommonJS and an ESM copy of this package (an app that requires one
 * package and imports another) share it through a registered symbol, so a plugin registered with either copy is
 * known to both.
 */
const REGISTRY = Symbol.for('@lb/core/strategies');
const holder = globalThis as { [REGISTRY]?: Map<string, StrategyFactory> };
const registry: Map<string, StrategyFactory> = (holder[REGISTRY] ??= new Map());
for (const [name, factory] of BUILTINS) if (!registry.has(name)) registry.set(name, factory);

/**
 * Registers a strategy under a name, so configs (and env `LB_STRATEGY`) can select it.
 *
 * @example
 * registerStrategy('first', () => ({ name: 'first', pick: (c) => c[0] }));
 */
export function registerStrategy(name: string, factory: StrategyFactory): void {
  if (!name || typeof factory !== 'function')
    throw new ConfigError(`registerStrategy: need a name and a factory, received ${name}`);
  registry.set(name, factory);
}

/** The names every config may use (built-ins, their aliases, and registered plugins). */
export function strategyNames(): string[] {
  return [...registry.keys()];
}

/** Resolves a name, a factory or an instance to a factory. Throws naming the unknown name. */
export function resolveStrategy(s: string | Strategy | StrategyFactory | undefined): StrategyFactory {
  if (s === undefined) return priority;
  if (typeof s === 'function') return s;
  if (typeof s === 'object' && typeof s.pick === 'function') return () => s;
  const f = registry.get(String(s));
  if (!f) {
    throw new ConfigError(
      `strategy: unknown strategy ${JSON.stringify(s)}; expected one of ${[...registry.keys()].join(', ')}`,
    );
  }
  return f;
}

export type { Candidate, PickContext, Strategy, StrategyOptions };
