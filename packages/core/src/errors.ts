import type { OutcomeKind } from './classify.js';

/** One failed attempt, as carried by {@link NoHealthyEndpointError}. Keys never appear here. */
export interface AttemptCause {
  endpointId: string;
  attempt: number;
  kind: OutcomeKind;
  status?: number;
  retryAfterMs?: number;
  message: string;
}

/** OpenAI's error body: `{ error: { message, type, code, param } }`. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}

const BRAND = Symbol.for('lb.error');

/**
 * Base of every error lb throws. Carries machine-readable fields and renders itself in OpenAI's error shape.
 * Use {@link isLbError} rather than `instanceof`: it survives two copies of the package in one install.
 */
export class LbError extends Error {
  readonly [BRAND] = true;
  /** HTTP status a gateway should answer with. */
  readonly status: number;
  /** OpenAI-style error type (`server_error`, `rate_limit_exceeded`, …). */
  readonly type: string;
  /** Machine-readable code. */
  readonly code: string;
  /** When the caller may try again, in ms, if known. */
  readonly retryAfterMs: number | undefined;
  /** The request parameter at fault, if one (OpenAI's `param`: `n`, `messages[2].content`, …). */
  readonly param: string | undefined;

  constructor(
    message: string,
    opts: {
      status: number;
      type: string;
      code: string;
      retryAfterMs?: number;
      cause?: unknown;
      param?: string;
    },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LbError';
    this.status = opts.status;
    this.type = opts.type;
    this.code = opts.code;
    this.retryAfterMs = opts.retryAfterMs;
    this.param = opts.param;
  }

  /** The body an OpenAI-compatible server sends for this error. */
  toOpenAIError(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param ?? null } };
  }

  toJSON(): OpenAIErrorBody {
    return this.toOpenAIError();
  }
}

/** True for any error from an lb package (across package copies). */
export function isLbError(e: unknown): e is LbError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

/**
 * No endpoint could serve the request: none was available, or every attempt failed.
 * `attempts` holds every attempt's cause, in order. `status` says what a gateway answers:
 * 429 when every cause was a rate limit (with `retryAfterMs`, the earliest time one frees up),
 * 504 when the last failure was a timeout, 502 when upstreams failed, 503 when nothing was available.
 *
 * @example
 * try { await router.execute(req, attempt) } catch (e) { if (isNoHealthyEndpointError(e)) console.log(e.attempts) }
 */
export class NoHealthyEndpointError extends LbError {
  readonly isNoHealthyEndpointError = true;
  readonly attempts: readonly AttemptCause[];
  /** The model asked for, if any. */
  readonly model: string | undefined;
  /** The last upstream value (e.g. a Response) when the last attempt got one; not serialised. */
  declare readonly lastValue: unknown;

  constructor(opts: {
    attempts: AttemptCause[];
    model?: string;
    retryAfterMs?: number;
    lastValue?: unknown;
    reason?: string;
  }) {
    const { attempts } = opts;
    const last = attempts[attempts.length - 1];
    const allRateLimited = attempts.length > 0 && attempts.every((a) => a.kind === 'rate-limit');
    let status = 503;
    let code = 'no_healthy_endpoint';
    let type = 'server_error';
    if (allRateLimited || (attempts.length === 0 && opts.reason === 'rate-limit')) {
      status = 429;
      code = 'rate_limit_exceeded';
      type = 'rate_limit_error';
    } else if (last?.kind === 'timeout') {
      status = 504;
      code = 'upstream_timeout';
    } else if (last) {
      status = 502;
      code = 'upstream_error';
    }
    const detail = attempts.length
      ? ` after ${attempts.length} attempt${attempts.length === 1 ? '' : 's'}: ${attempts
          .map((a) => `${a.endpointId} ${a.status ?? a.kind}${a.message ? ` (${truncate(a.message)})` : ''}`)
          .join('; ')}`
      : opts.reason
        ? ` (${opts.reason})`
        : '';
    super(
      `No healthy endpoints available${opts.model ? ` for model ${JSON.stringify(opts.model)}` : ''}${detail}`,
      {
        status,
        type,
        code,
        retryAfterMs: opts.retryAfterMs,
      },
    );
    this.name = 'NoHealthyEndpointError';
    this.attempts = attempts;
    this.model = opts.model;
    Object.defineProperty(this, 'lastValue', { value: opts.lastValue, enumerable: false });
  }
}

export function isNoHealthyEndpointError(e: unknown): e is NoHealthyEndpointError {
  return isLbError(e) && (e as { isNoHealthyEndpointError?: boolean }).isNoHealthyEndpointError === true;
}

/** The request's overall deadline passed before any attempt succeeded. */
export class DeadlineExceededError extends LbError {
  readonly isDeadlineExceededError = true;
  readonly attempts: readonly AttemptCause[];
  constructor(deadlineMs: number, attempts: AttemptCause[]) {
    super(`Request deadline of ${deadlineMs} ms exceeded after ${attempts.length} attempt(s)`, {
      status: 504,
      type: 'server_error',
      code: 'deadline_exceeded',
    });
    this.name = 'DeadlineExceededError';
    this.attempts = attempts;
  }
}

export function isDeadlineExceededError(e: unknown): e is DeadlineExceededError {
  return isLbError(e) && (e as { isDeadlineExceededError?: boolean }).isDeadlineExceededError === true;
}

/** Thrown inside an attempt when its own timeout fired (classified as `timeout`). */
export class AttemptTimeoutError extends LbError {
  constructor(endpointId: string, timeoutMs: number) {
    super(`Attempt on ${endpointId} timed out after ${timeoutMs} ms`, {
      status: 504,
      type: 'server_error',
      code: 'upstream_timeout',
    });
    this.name = 'TimeoutError';
  }
}

/** Invalid configuration or arguments: names the place and the received value. */
export class ConfigError extends LbError {
  readonly isConfigError = true;
  constructor(message: string) {
    super(message, { status: 500, type: 'invalid_config', code: 'invalid_config' });
    this.name = 'ConfigError';
  }
}

function truncate(s: string): string {
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

/** Builds the error an HTTP status stands for (used by gateways to render upstream-less failures). */
export function errorFromStatus(status: number, message: string, retryAfterMs?: number): LbError {
  const type =
    status === 429
      ? 'rate_limit_error'
      : status === 401
        ? 'authentication_error'
        : status >= 500
          ? 'server_error'
          : 'invalid_request_error';
  const code =
    status === 429
      ? 'rate_limit_exceeded'
      : status === 401
        ? 'invalid_api_key'
        : status === 404
          ? 'not_found'
          : status === 413
            ? 'request_too_large'
            : status >= 500
              ? 'server_error'
              : 'invalid_request';
  return new LbError(message, { status, type, code, retryAfterMs });
}
