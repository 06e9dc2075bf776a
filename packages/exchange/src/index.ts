/**
 * @lb/exchange — the exchange engine of lb: one attempt and stream lifecycle for lb-server and
 * `@lb/openai-adapter`, over a small {@link Transport} (send; status, headers and a body of byte chunks; abort).
 * The first-content gate, error events (one status table, `@lb/providers`'), stream probation and its byte budget,
 * first-byte and idle timeouts, usage from the tail, the `x-lb-*` headers and the dialect path live here once.
 */

export type { AttemptSettings, EarlyResponder, Sink, StreamHolder, Timers } from './attempt.js';
export { Attempt, defaultTimers, HOLD_MAX_BYTES, HoldBudget } from './attempt.js';
export { askForUsage, COST_HEADER, costText, dropAskedUsage } from './cost.js';
export type { ResponseHeaders } from './errors.js';
export { EventTooLargeError, ExchangeTimeoutError, StreamOpenError } from './errors.js';
export type { PreparedRequest } from './prepare.js';
export { ATTEMPTS_HEADER, attemptTimeout, ENDPOINT_HEADER, prepareUpstream, tagResponse } from './prepare.js';
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
