import type { Endpoint } from './endpoint.js';
import type { EndpointStats } from './state.js';

/**
 * One endpoint as a route sees it: model groups may give the same endpoint another weight, priority or
 * upstream model name per exposed model. Strategies read these fields; they never change them.
 */
export interface Candidate {
  readonly endpoint: Endpoint;
  /** Position of the endpoint in the pool (stable for the life of a pool snapshot). */
  readonly index: number;
  readonly weight: number;
  readonly priority: number;
  /** Upstream model name for this route, when the request named a model. */
  readonly upstreamModel: string | undefined;
  /** Live statistics of the endpoint (in flight, EWMA latency…), shared by every route. */
  readonly stats: EndpointStats;
}

/** What a strategy may consult besides the candidates. */
export interface PickContext {
  readonly model: string | undefined;
  readonly requestId: string | undefined;
  readonly attempt: number;
  /**
   * True when `candidates` is a cached list that will not change while it stays the same array object: a strategy
   * may then keep data derived from it (cumulative weights) keyed by the array's identity. False for scratch arrays.
   */
  readonly stable?: boolean;
}

/**
 * Chooses one candidate. The router has already filtered the candidates (enabled, healthy, serves the model,
 * weight > 0, every guard admits, not yet tried in this request when others remain), and kept the route's order
 * (by priority, then configuration order). `candidates` is a scratch array reused across calls: read it now,
 * never keep it. Must not allocate on the hot path; may keep state (a cursor, an EWMA) inside itself.
 *
 * @example
 * const first: Strategy = { name: 'first', pick: (c) => c[0] };
 * createRouter({ endpoints, strategy: first });
 */
export interface Strategy {
  readonly name: string;
  pick(candidates: readonly Candidate[], ctx: PickContext): Candidate | undefined;
}

/** Creates a fresh strategy instance; each route (model) gets its own, so cursors do not interfere. */
export type StrategyFactory = (options: StrategyOptions) => Strategy;

export interface StrategyOptions {
  /** Source of randomness in [0, 1). Default `Math.random`; inject for deterministic tests. */
  random: () => number;
  /** least-latency: probability of exploring a random candidate instead of the fastest. Default 0.05. */
  explorationRate?: number;
  /** priority: how to spread within the best priority group. Default `weighted-random`. */
  withinGroup?: 'weighted-random' | 'round-robin';
}
