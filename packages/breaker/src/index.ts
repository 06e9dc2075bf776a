/**
 * @lb/breaker — per-endpoint circuit breakers (built on cockatiel 3) and active health checks for an @lb/core
 * router. Both attach from the outside through the router's guard and event bus; @lb/core never imports them.
 */

export type {
  BreakerCounts,
  BreakerHandle,
  BreakerOptions,
  BreakerPeers,
  BreakerSnapshot,
  BreakerState,
  BreakerStateChange,
  HalfOpenBackoffOptions,
  SamplingOptions,
} from './breaker.js';
export { attachBreaker } from './breaker.js';
export type { HealthCheckHandle, HealthCheckOptions, HealthCheckResult, HealthSnapshot } from './health.js';
export { attachHealthChecks } from './health.js';
