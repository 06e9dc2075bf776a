/**
 * @lb/core — endpoints, router, strategies, failover executor, error classification and the typed event bus.
 * No dependency but eventemitter3; no `node:` imports: runs in Node 20+, Bun, Deno and browsers.
 */

export type { OutcomeInput, OutcomeKind, Verdict } from './classify.js';
export { classify, isAbortError, isTimeoutError, parseDuration, retryAfterFrom } from './classify.js';
export type { EndpointConfig } from './endpoint.js';
export { Endpoint } from './endpoint.js';
export type { AttemptCause, OpenAIErrorBody } from './errors.js';
export {
  AttemptTimeoutError,
  ConfigError,
  DeadlineExceededError,
  errorFromStatus,
  isDeadlineExceededError,
  isLbError,
  isNoHealthyEndpointError,
  LbError,
  NoHealthyEndpointError,
} from './errors.js';
export type { EstimateOptions } from './estimate.js';
export { estimateTokens } from './estimate.js';
export type {
  CircuitState,
  CooldownState,
  GuardStateChange,
  ProbeResult,
  PublishedEventName,
  RouterEventName,
  RouterEvents,
  SharedStoreState,
  StoreStateEvent,
  Usage,
} from './events.js';
export type { Guard, Veto } from './guard.js';
export type { HeadersLike } from './headers.js';
export { getHeader, parseTags } from './headers.js';
export { maskKey, redact, secretForms } from './mask.js';
export type { OutlierEjectionOptions } from './outlier.js';
export { OUTLIER_DEFAULTS } from './outlier.js';
export type { RouteRequest } from './request.js';
export type {
  AttemptContext,
  BackoffOptions,
  EndpointSnapshot,
  ExecuteOptions,
  ModelBackendConfig,
  ModelGroupConfig,
  RouterConfig,
  RouterSnapshot,
} from './router.js';
export { createRouter, HEDGE_CANCELLED, Router } from './router.js';
export type { EndpointHealth, EndpointStats, EndpointStatus } from './state.js';
export type { BuiltinStrategyName } from './strategies/builtin.js';
export {
  leastBusy,
  leastLatency,
  priority,
  randomStrategy,
  registerStrategy,
  resolveStrategy,
  roundRobin,
  strategyNames,
  weightedRandom,
} from './strategies/builtin.js';
export type { Candidate, PickContext, Strategy, StrategyFactory, StrategyOptions } from './strategy.js';
