/**
 * @lb/exchange — the exchange engine of lb: one attempt and stream lifecycle for lb-server and
 * `@lb/openai-adapter`, over a small {@link Transport} (send; status, headers and a body of byte chunks; abort).
 * The first-content gate, error events (one status table, `@lb/providers`'), stream probation and its byte budget,
 * first-byte and idle timeouts, usage from the tail, the `x-lb-*` headers and the dialect path live here once.
 */

export type { AffinityRedisLike, AffinityStore, ObjectKind } from './affinity.js';
export {
  AFFINITY_TTL_MS,
  CreatedIdTap,
  createdIdIn,
  createsObject,
  isObjectRoute,
  MemoryAffinityStore,
  objectIdsIn,
  objectKindOf,
  PIN_HEADER,
  pinnedEndpoint,
  pinnedUnavailable,
  RedisAffinityStore,
  rememberObject,
} from './affinity.js';
export type { AttemptSettings, EarlyResponder, Sink, StreamHolder, Timers } from './attempt.js';
export { Attempt, defaultTimers } from './attempt.js';
export {
  CONTINUE_INSTRUCTION,
  continuable,
  continuationBody,
  continuationRequest,
  prefixCut,
  StreamTrail,
} from './continue.js';
export { askForUsage, COST_HEADER, costText, dropAskedUsage } from './cost.js';
export type { ResponseHeaders } from './errors.js';
export { EventTooLargeError, ExchangeTimeoutError, StreamDurationError, StreamOpenError } from './errors.js';
export type { FallbackCause, FallbackChainTable, FallbackConfig } from './fallback.js';
export {
  BodyCollector,
  FALLBACK_BODY_LIMIT,
  FALLBACK_ENV_VARS,
  FALLBACK_HEADER,
  FALLBACKS_REQUEST_HEADER,
  FallbackRun,
  fallbackCauseOf,
  fallbackCauseOfError,
  fallbackConfigFromEnv,
  hasFallbacks,
  modelsWithFallbacks,
  parseFallbackList,
} from './fallback.js';
export type { HedgeConfig, HedgeOptions, HedgeResult, HedgeRunOptions } from './hedge.js';
export {
  HEDGE_MIN_SAMPLES,
  HEDGED_HEADER,
  HedgeBudget,
  HedgeRoute,
  Hedger,
  hedgeCancelled,
  hedgeSafe,
  LatencySketch,
  parsePercentile,
} from './hedge.js';
export { HOLD_MAX_BYTES, HoldBudget } from './hold-budget.js';
export type { PreparedRequest } from './prepare.js';
export {
  ATTEMPTS_HEADER,
  attemptTimeout,
  ENDPOINT_HEADER,
  errorHeaders,
  prepareUpstream,
  tagResponse,
} from './prepare.js';
export type { GateVerdict } from './sse.js';
export {
  DEFAULT_MAX_EVENT_BYTES,
  EventFramer,
  errorEventIn,
  gate,
  hasErrorEvent,
  MAX_PREAMBLE_BYTES,
  PASS,
  quickPass,
  sseError,
  WAIT,
} from './sse.js';
export type { FetchFn, Transport, TransportHandler, TransportRequest } from './transport.js';
export { fetchTransport } from './transport.js';
export { carriesUsage, UsageTail } from './usage.js';
