/**
 * An endpoint's health, as a discriminated union: a state carries only the fields it has.
 * - `healthy`: in rotation.
 * - `cooling`: rate limited (429) until `until`, then back in rotation by itself.
 * - `unhealthy`: its key was rejected (401/403) or a probe failed: out until `until` (a long cooldown) or until a
 *   health probe passes or someone re-enables it; then tried again.
 * - `disabled`: taken out by hand (`setEndpointHealth(id, false)`) or by config; only a hand can bring it back.
 */
export type EndpointHealth =
  | { readonly status: 'healthy' }
  | { readonly status: 'cooling'; readonly until: number; readonly reason: string }
  | { readonly status: 'unhealthy'; readonly until: number; readonly reason: string }
  | { readonly status: 'disabled'; readonly reason: string };

export type EndpointStatus = EndpointHealth['status'];

/** Running statistics of one endpoint. Plain mutable numbers: the router updates them in place. */
export interface EndpointStats {
  /** Attempts started. */
  requests: number;
  successes: number;
  failures: number;
  /** Failures since the last success. */
  consecutiveErrors: number;
  /** Attempts (and streams) still running. */
  inFlight: number;
  /** Exponentially weighted moving average of attempt latency (to response headers), ms. */
  ewmaLatencyMs: number;
  /** How many latencies fed the average (0: never measured). */
  latencySamples: number;
  /** Last latency, ms. */
  lastLatencyMs: number;
  /** Epoch ms of the last attempt start (0: never). */
  lastUsedAt: number;
  /** Epoch ms of the last failure (0: never). */
  lastErrorAt: number;
  /** Last failure, key masked. */
  lastError: string | undefined;
  /** Last HTTP status seen. */
  lastStatus: number | undefined;
  /** Failures by outcome kind. */
  errorsByKind: Record<string, number>;
}

export function newStats(): EndpointStats {
  return {
    requests: 0,
    successes: 0,
    failures: 0,
    consecutiveErrors: 0,
    inFlight: 0,
    ewmaLatencyMs: 0,
    latencySamples: 0,
    lastLatencyMs: 0,
    lastUsedAt: 0,
    lastErrorAt: 0,
    lastError: undefined,
    lastStatus: undefined,
    errorsByKind: {},
  };
}

export const HEALTHY: EndpointHealth = Object.freeze({ status: 'healthy' });
