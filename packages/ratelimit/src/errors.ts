import { isLbError, LbError } from '@lb/core';

/** Which limit refused: a client's own window, the endpoints' budgets, or the wait queue. */
export type RateLimitScope = 'client' | 'endpoint' | 'queue';

/**
 * A request was refused by a rate limit of ours (not an upstream's 429). `status` is 429; `retryAfterMs` says when
 * to try again (send it as `Retry-After`); renders as OpenAI's error JSON with `toOpenAIError()`. Never names a key:
 * client keys are masked.
 *
 * Use {@link isRateLimitedError} rather than `instanceof` (it survives two copies of the package).
 *
 * @example
 * const r = limiter.take(clientId);
 * if (!r.allowed) throw RateLimitedError.fromClient(r);
 * // later, in the HTTP layer:
 * if (isRateLimitedError(e)) res.writeHead(429, { 'retry-after': String(Math.ceil(e.retryAfterMs / 1000)) }).end(JSON.stringify(e.toOpenAIError()));
 */
export class RateLimitedError extends LbError {
  readonly isRateLimitedError = true;
  /** Which limit refused. */
  readonly scope: RateLimitScope;
  /** ms until a request may succeed (always set, >= 0). */
  declare readonly retryAfterMs: number;
  /** The limit that refused (requests per window), when known. */
  readonly limit: number | undefined;

  constructor(
    message: string,
    opts: { scope: RateLimitScope; retryAfterMs: number; limit?: number; cause?: unknown },
  ) {
    const retryAfterMs = Math.max(0, Math.ceil(opts.retryAfterMs));
    super(message, {
      status: 429,
      type: 'rate_limit_error',
      code: 'rate_limit_exceeded',
      retryAfterMs,
      cause: opts.cause,
    });
    this.name = 'RateLimitedError';
    this.scope = opts.scope;
    this.limit = opts.limit;
  }

  /** The error for a refused {@link ClientLimitResult}. */
  static fromClient(result: { limit: number; retryAfterMs: number }, windowMs?: number): RateLimitedError {
    const per = windowMs === undefined ? 'window' : `${windowMs} ms`;
    return new RateLimitedError(
      `Rate limit reached for this client: ${result.limit} requests per ${per}. Try again in ${Math.ceil(result.retryAfterMs)} ms.`,
      { scope: 'client', retryAfterMs: result.retryAfterMs, limit: result.limit },
    );
  }
}

/** True for a {@link RateLimitedError} (across package copies). */
export function isRateLimitedError(e: unknown): e is RateLimitedError {
  return isLbError(e) && (e as { isRateLimitedError?: unknown }).isRateLimitedError === true;
}
