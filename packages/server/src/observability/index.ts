/**
 * The server's observability module: pino logger, Prometheus metrics (own registry), `/health`, `/stats` and the
 * JSON Lines request log — all fed by the router's event bus and `router.snapshot()`, never by its internals.
 */

export { createObservability } from './create.js';
export type { BreakerSource, HealthCheckSource, RateLimitSource } from './sources.js';
export type {
  ClientRequestRecord,
  EndpointHealthView,
  HealthBody,
  Observability,
  ObservabilityOptions,
  OverallStatus,
  RecordUsage,
  StatsBody,
} from './types.js';
