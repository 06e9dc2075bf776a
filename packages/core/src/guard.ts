import type { Endpoint } from './endpoint.js';
import type { RouteRequest } from './request.js';

/** A guard's refusal: why, and until when (epoch ms) if it knows. */
export interface Veto {
  readonly reason: string;
  /** Epoch ms when the guard expects to admit again, if known. */
  readonly until?: number;
  /** The refusal is a rate limit (so a gateway answers 429 rather than 503 when every endpoint refuses so). */
  readonly rateLimited?: boolean;
}

/**
 * Vetoes endpoints at pick time. The breaker and the rate limiter are guards, attached from outside with
 * `router.addGuard(guard)`, which returns a disposer.
 *
 * `admit` must be synchronous, cheap and free of side effects (it is called for every candidate, and for health
 * pages). `acquire` is called synchronously once the strategy has chosen the endpoint for an attempt: take a token,
 * claim the half-open probe slot there. Because admit and acquire run in the same tick, concurrent requests can
 * never both pass a guard that has room for one.
 */
export interface Guard {
  readonly name: string;
  /**
   * `false` when `admit` never reads its `now` argument (it reads a clock of its own only when it needs one, as the
   * breaker does while a circuit is open). A pick then skips the router's clock read — most of what a guard costs
   * a pick (`Date.now()` is ~40 ns and allocates its result) — whenever no attached guard needs it; such a guard
   * receives `now` = 0 from `pick`. Default: true.
   */
  readonly usesNow?: boolean;
  /**
   * The guard takes failing endpoints out of rotation by itself (a circuit breaker does). While one such guard is
   * attached, the router's default outlier ejection steps aside. Default: false.
   */
  readonly ejects?: boolean;
  admit(endpoint: Endpoint, request: RouteRequest, now: number): true | Veto;
  acquire?(endpoint: Endpoint, request: RouteRequest, now: number, requestId: string): void;
  /** A few fields for health pages (breaker state, remaining budget). Never a key. */
  describe?(endpoint: Endpoint, now: number): Record<string, unknown>;
  /**
   * Called when a pick found no endpoint every guard admits, with the route's candidates the router itself would
   * serve (enabled, healthy, weighted, carrying the request's tags). The guard may name one of them to let through
   * anyway — the breaker's probe of the circuit open longest when every circuit is open (Envoy's panic threshold).
   * The router uses it only if every other guard admits it, then calls `acquire` as for any pick. Pure, like
   * `admit`: a snapshot or `pick` may call it without taking anything.
   */
  rescue?(candidates: readonly Endpoint[], request: RouteRequest, now: number): Endpoint | undefined;
}
