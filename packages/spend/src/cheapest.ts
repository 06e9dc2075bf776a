import { ConfigError, registerStrategy, type Strategy, type StrategyFactory } from '@lb/core';
import { PriceTable } from './prices.js';

/** Options of {@link cheapest}. */
export interface CheapestOptions {
  /** Prices to compare (per-endpoint `meta.price` wins over the model's). Default: the shipped table. */
  prices?: PriceTable;
  /**
   * Input tokens counted per output token when comparing prices that differ in both: the compared figure is
   * `input * inputPerOutput + output` (USD per 1M). Default 3 (a typical chat request reads ~3 tokens per token it
   * writes).
   */
  inputPerOutput?: number;
  /**
   * Probability of trying another endpoint of the cheapest price instead of the fastest, so its latency gets
   * measured again. Default 0.05. Never leaves the cheapest price.
   */
  explorationRate?: number;
}

/** Prices within this relative distance are equal. */
const EPS = 1e-9;
const U30_SCALE = 1 / 0x40000000;

/**
 * The `cheapest` strategy: among the candidates (the router already left out unhealthy endpoints and those a guard
 * vetoes, such as an endpoint out of rate-limit budget), the one with the lowest price for the request's model, ties
 * broken by latency (never measured first, then lowest EWMA), equal latencies taken in turn. An endpoint whose own
 * price (`meta.price`, config `price = { … }`) is lower — a discounted contract, a self-hosted model — gets the
 * traffic; when it is out of budget or down, traffic spills to the next price. Endpoints with no price for the
 * model rank after every priced one. Picks allocate nothing.
 *
 * @example
 * registerStrategy('cheapest', cheapest({ prices })); // or registerCheapest({ prices })
 * createRouter({ endpoints, strategy: 'cheapest' });
 */
export function cheapest(options: CheapestOptions = {}): StrategyFactory {
  const ratio = options.inputPerOutput ?? 3;
  if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio < 0) {
    throw new ConfigError(
      `cheapest: inputPerOutput must be a number >= 0, received ${JSON.stringify(ratio)}`,
    );
  }
  const table = options.prices;
  if (table !== undefined && !(table instanceof PriceTable)) {
    throw new ConfigError('cheapest: prices must be a PriceTable');
  }
  // One table for every route (a table holds a slot on each endpoint: one per route would pile them up).
  let shared = table;
  return ({ random, explorationRate }) => {
    shared ??= new PriceTable();
    const prices = shared;
    const explore = options.explorationRate ?? explorationRate ?? 0.05;
    // Integer draws when the router's random offers them: a double returned across a call may be boxed (16 B).
    const u30 = (random as { u30?: () => number }).u30;
    let cursor = 0;
    /** Each candidate's compared price, by position (grown, never shrunk: picks allocate nothing). */
    let units = new Float64Array(16);
    /** The stable candidate list and model `units` was computed for (prices do not change while both stay). */
    let unitsOf: readonly unknown[] | undefined;
    let unitsModel: string | undefined;
    /** The lowest price of `unitsOf`, kept in a typed array: a double in a closure variable is boxed (16 B a write). */
    const lowest = new Float64Array(1);
    const strategy: Strategy = {
      name: 'cheapest',
      pick(c, ctx) {
        const n = c.length;
        if (n <= 1) return c[0];
        const model = ctx?.model;
        if (units.length < n) {
          units = new Float64Array(2 * n);
          unitsOf = undefined;
        }
        const u = units;
        if (!(ctx?.stable && c === unitsOf && model === unitsModel)) {
          // Pass 1: every candidate's price, and the lowest.
          let low = Number.POSITIVE_INFINITY;
          for (let i = 0; i < n; i++) {
            const p = prices.peek(c[i].upstreamModel ?? model, c[i].endpoint);
            const x = p === undefined ? Number.POSITIVE_INFINITY : p.input * ratio + p.output;
            u[i] = x;
            if (x < low) low = x;
          }
          lowest[0] = low;
          unitsOf = ctx?.stable ? c : undefined;
          unitsModel = model;
        }
        const low = lowest[0];
        const top = low === Number.POSITIVE_INFINITY ? low : low + Math.abs(low) * EPS;
        // Pass 2: how many at that price, and their lowest latency (-1: never measured, tried first).
        let count = 0;
        let bestLat = Number.POSITIVE_INFINITY;
        for (let i = 0; i < n; i++) {
          if (u[i] > top) continue;
          count++;
          const s = c[i].stats;
          const lat = s.latencySamples === 0 ? -1 : s.ewmaLatencyMs;
          if (lat < bestLat) bestLat = lat;
        }
        const draw = count > 1 && explore > 0 ? (u30 ? u30() * U30_SCALE : random()) : 1;
        const exploring = draw < explore;
        // Pass 3: exploring, any of the cheapest; else those at the best latency. Taken in turn.
        let ties = count;
        if (!exploring) {
          ties = 0;
          for (let i = 0; i < n; i++) {
            if (u[i] > top) continue;
            const s = c[i].stats;
            if ((s.latencySamples === 0 ? -1 : s.ewmaLatencyMs) === bestLat) ties++;
          }
        }
        let k = cursor % ties;
        cursor = (cursor + 1) % 1_000_000_007;
        for (let i = 0; i < n; i++) {
          if (u[i] > top) continue;
          if (!exploring) {
            const s = c[i].stats;
            if ((s.latencySamples === 0 ? -1 : s.ewmaLatencyMs) !== bestLat) continue;
          }
          if (k-- === 0) return c[i];
        }
        return c[0];
      },
    };
    return strategy;
  };
}

/**
 * Registers {@link cheapest} under the name `cheapest` (configs and `LB_STRATEGY` may then name it). Call it before
 * the config is validated: `@lb/config-env` accepts only registered strategy names.
 */
export function registerCheapest(options: CheapestOptions = {}): void {
  registerStrategy('cheapest', cheapest(options));
}
