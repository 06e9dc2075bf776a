import { getHeader, type HeadersLike } from './headers.js';

/**
 * What an attempt's outcome means for routing. Every package acts on this one verdict:
 * - `success`: 2xx/3xx.
 * - `client`: the caller's own error (400, 404, 413, 422, …): returned as is, no failover.
 * - `server`: the endpoint's transient fault (408, 409, 5xx, 529): fail over, counts for breakers.
 * - `network`: connection refused/reset, DNS, TLS, protocol errors: fail over, counts for breakers.
 * - `timeout`: connect/headers/body/attempt timeout: fail over, counts for breakers.
 * - `rate-limit`: 429: cool the endpoint down (Retry-After when given), fail over, does not count for breakers.
 * - `auth`: 401/403: the key was rejected: retire it until a probe passes or it is re-enabled, fail over.
 * - `aborted`: the caller gave up: stop at once, no further attempts.
 */
export type OutcomeKind =
  | 'success'
  | 'client'
  | 'server'
  | 'network'
  | 'timeout'
  | 'rate-limit'
  | 'auth'
  | 'aborted';

/** The verdict of {@link classify}. */
export interface Verdict {
  readonly kind: OutcomeKind;
  /** Try another endpoint (or this one again, after backoff). */
  readonly failover: boolean;
  /** The endpoint is at fault: circuit breakers count it. */
  readonly countsForBreaker: boolean;
  /** HTTP status when there was a response. */
  readonly status?: number;
  /** How long the upstream asked us to wait, from `retry-after-ms`, `retry-after` or `x-ratelimit-reset-*`. */
  readonly retryAfterMs?: number;
}

/** What {@link classify} looks at: a response's status and headers, or a thrown error. */
export interface OutcomeInput {
  status?: number;
  headers?: HeadersLike | null;
  error?: unknown;
  /** Set when the caller's own signal was aborted. */
  callerAborted?: boolean;
  /** Set when the attempt was stopped by its own timeout. */
  timedOut?: boolean;
}

const SUCCESS: Verdict = { kind: 'success', failover: false, countsForBreaker: false };
const ABORTED: Verdict = { kind: 'aborted', failover: false, countsForBreaker: false };
const TIMEOUT: Verdict = { kind: 'timeout', failover: true, countsForBreaker: true };
const NETWORK: Verdict = { kind: 'network', failover: true, countsForBreaker: true };

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ERR_LB_TIMEOUT',
]);

/**
 * Classifies an attempt's outcome. Pure; exported so that every package (and user code) reads
 * outcomes the same way.
 *
 * @example
 * classify({ status: 429, headers: { 'retry-after': '2' } });
 * // { kind: 'rate-limit', failover: true, countsForBreaker: false, status: 429, retryAfterMs: 2000 }
 */
export function classify(input: OutcomeInput): Verdict {
  if (input.callerAborted) return ABORTED;
  if (input.timedOut) return TIMEOUT;
  let status = input.status;
  let headers = input.headers;
  if (status === undefined && input.error !== undefined) {
    const err = input.error as { status?: unknown; headers?: unknown; name?: unknown };
    if (err && typeof err === 'object' && typeof err.status === 'number') {
      status = err.status;
      headers = (err.headers as HeadersLike | undefined) ?? headers;
    } else {
      return isTimeoutError(input.error) ? TIMEOUT : NETWORK;
    }
  }
  if (status === undefined) return SUCCESS;
  if (status < 400) return SUCCESS;
  if (status === 429) {
    return {
      kind: 'rate-limit',
      failover: true,
      countsForBreaker: false,
      status,
      retryAfterMs: retryAfterFrom(headers),
    };
  }
  if (status === 401 || status === 403) {
    return { kind: 'auth', failover: true, countsForBreaker: false, status };
  }
  if (status === 408 || status === 409 || status >= 500) {
    return {
      kind: 'server',
      failover: true,
      countsForBreaker: true,
      status,
      retryAfterMs: retryAfterFrom(headers),
    };
  }
  return { kind: 'client', failover: false, countsForBreaker: false, status };
}

/** True for errors that mean "took too long": undici's timeout errors, `TimeoutError` DOMExceptions, ETIMEDOUT. */
export function isTimeoutError(error: unknown): boolean {
  let e: any = error;
  for (let depth = 0; e && depth < 4; depth++) {
    if (e.name === 'TimeoutError' || TIMEOUT_CODES.has(e.code)) return true;
    if (typeof e.name === 'string' && /Timeout/.test(e.name) && e.name !== 'AbortError') return true;
    e = e.cause;
  }
  return false;
}

/** True for the abort errors that fetch, undici and AbortSignal produce. */
export function isAbortError(error: unknown): boolean {
  const e = error as { name?: string; code?: string } | null;
  return !!e && (e.name === 'AbortError' || e.code === 'ABORT_ERR' || e.code === 'UND_ERR_ABORTED');
}

/**
 * How long an upstream asked us to wait, in ms: `retry-after-ms`, then `retry-after` (seconds or an HTTP date),
 * then OpenAI's `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` (`6m0s`, `20ms`). Undefined when none is
 * present or parseable.
 */
export function retryAfterFrom(
  headers: HeadersLike | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (!headers) return undefined;
  const ms = getHeader(headers, 'retry-after-ms');
  if (ms !== undefined) {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return n;
  }
  const ra = getHeader(headers, 'retry-after');
  if (ra !== undefined) {
    const secs = Number(ra);
    if (ra.trim() !== '' && Number.isFinite(secs) && secs >= 0) return secs * 1000;
    const date = Date.parse(ra);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  const resetReq = parseDuration(getHeader(headers, 'x-ratelimit-reset-requests'));
  const resetTok = parseDuration(getHeader(headers, 'x-ratelimit-reset-tokens'));
  if (resetReq !== undefined || resetTok !== undefined) return Math.max(resetReq ?? 0, resetTok ?? 0);
  return undefined;
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;

/**
 * Parses the Go-style durations OpenAI uses in `x-ratelimit-reset-*` headers (`1s`, `6m0s`, `20ms`, `1h2m3.5s`)
 * and plain numbers of seconds. Returns ms, or undefined when the text is not a duration.
 */
export function parseDuration(text: string | undefined | null): number | undefined {
  if (text === undefined || text === null) return undefined;
  const t = text.trim();
  if (t === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  let total = 0;
  let matched = 0;
  DURATION_PART.lastIndex = 0;
  for (let m = DURATION_PART.exec(t); m; m = DURATION_PART.exec(t)) {
    const n = Number(m[1]);
    matched += m[0].length;
    total += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
  }
  return matched === t.length ? total : undefined;
}
