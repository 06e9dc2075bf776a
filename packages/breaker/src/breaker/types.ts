/**
 * The breaker's public types: a circuit's state, a change of it, a circuit's snapshot, and the handle
 * `attachBreaker` returns.
 */
import type { BreakerCounts } from '../internal/counting-breaker.js';

/** A circuit's state. `isolated` is held open by hand until `reset`. */
export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

/** A circuit changed state. */
export interface BreakerStateChange {
  endpointId: string;
  from: BreakerState;
  to: BreakerState;
  /** Why, in words (`5 consecutive failures; last: HTTP 503`, `probe succeeded`, `health probe passed`, …). Keys masked. */
  reason: string;
  /** Epoch ms. */
  at: number;
  /** When an open circuit lets a probe through, epoch ms. */
  until: number | undefined;
  /** Consecutive counted failures at the change. */
  failures: number;
}

/** One endpoint's circuit, for health pages: what `snapshot()` and the guard's `describe()` give. */
export type BreakerSnapshot = {
  state: BreakerState;
  /** Consecutive counted failures in this generation. */
  failures: number;
  counts: BreakerCounts;
  /** How many times this circuit opened (isolation excluded). */
  opens: number;
  /** Epoch ms when it opened (state `open`). */
  openedAt?: number;
  /** Epoch ms when a probe may go through (state `open`). */
  halfOpenAt?: number;
  /** Epoch ms of the last change. */
  since?: number;
  /** Why it is in this state. */
  reason?: string;
  /** Last counted failure, key masked. */
  lastFailure?: string;
};

/**
 * What {@link attachBreaker} returns: per-endpoint control and a view of every circuit.
 *
 * @example
 * const breaker = attachBreaker(router);
 * breaker.on('state', (e) => log.warn(`${e.endpointId}: ${e.from} -> ${e.to} (${e.reason})`));
 * breaker.isolate('primary'); // maintenance: no traffic until reset
 * breaker.reset('primary');
 */
export interface BreakerHandle {
  /** The guard's name. */
  readonly name: string;
  /** An endpoint's circuit state (`closed` for unknown ids and circuits never used). */
  state(id: string): BreakerState;
  /** Holds an endpoint's circuit open until {@link BreakerHandle.reset}. Returns false for an unknown id. */
  isolate(id: string, reason?: string): boolean;
  /** Closes an endpoint's circuit and clears its counts (ends an isolation too). Returns false for an unknown id. */
  reset(id: string): boolean;
  /**
   * Tells the breaker an out-of-band probe (a health check) passed: an open circuit goes half-open and closes
   * through cockatiel's own transitions (closed a tick later), without risking a user request. Returns true when
   * the probe moved an open circuit on; false when there was nothing to do (closed, half-open, isolated, unknown).
   */
  recordProbe(id: string, ok: boolean): boolean;
  /** Every endpoint's circuit, by endpoint id. */
  snapshot(): Record<string, BreakerSnapshot>;
  /** Subscribes to state changes; returns the disposer. */
  on(event: 'state', listener: (change: BreakerStateChange) => void): () => void;
  /** Removes the guard and every listener; pending outcomes are dropped. */
  dispose(): void;
}
