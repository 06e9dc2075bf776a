/**
 * Everything one router holds, in one object the router's parts share (route table, health, selection, execute,
 * snapshot): the pool, the guards, the bus, and the settings the hot path reads. Internal: `Router` keeps it private.
 */
import type { Guard } from '../guard.js';
import { fastRandom } from '../random.js';
import type { StrategyFactory } from '../strategy.js';
import { RouterBus } from './bus.js';
import { ROUTER_DEFAULTS, type RouterConfig } from './config.js';
import type { CandidateImpl, Pool, RouteDefaults } from './route-table.js';

/** A monotonic clock for latencies: `performance` where there is one. */
export const perf: { now(): number } = typeof performance !== 'undefined' ? performance : Date;

export class RouterState implements RouteDefaults {
  config!: RouterConfig;
  pool!: Pool;
  factory!: StrategyFactory;
  strategyName = 'priority';
  readonly bus = new RouterBus();
  guards: Guard[] = [];
  /** How many attached guards read the `now` a pick hands them (see `Guard.usesNow`). */
  clockGuards = 0;
  /** Attached guards with a `rescue` (see `Guard.rescue`). */
  rescuers = 0;
  /** The selection's reusable candidate list (see `select.ts`). */
  readonly scratch: CandidateImpl[] = [];
  /** The selection's reusable pick context, handed to strategies. */
  readonly ctx: {
    model: string | undefined;
    requestId: string | undefined;
    attempt: number;
    stable: boolean;
  } = {
    model: undefined,
    requestId: undefined,
    attempt: 1,
    stable: false,
  };
  now: () => number = Date.now;
  /**
   * The last clock reading, kept as a shared heap number (the field starts as `undefined`, so V8 stores it tagged):
   * guards receive this same boxed value instead of a fresh 16-byte box per pick. Re-boxed once per millisecond.
   */
  clock: unknown = undefined;
  /** Bumped on every health change: cached eligible lists are rebuilt when it moves. */
  healthVersion = 0;
  readonly ownRandom = fastRandom();
  random: () => number = this.ownRandom;
  maxRetries = ROUTER_DEFAULTS.maxRetries;
  failover = true;
  deadlineMs = ROUTER_DEFAULTS.deadlineMs;
  alpha = ROUTER_DEFAULTS.ewmaAlpha;

  get strategyOptions(): RouterConfig['strategyOptions'] {
    return this.config.strategyOptions;
  }
}
