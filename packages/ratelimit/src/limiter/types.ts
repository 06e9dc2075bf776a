/**
 * The limiter's public types: an endpoint's budgets (`limits`), a budget's and an endpoint's snapshot, the guard's
 * description, and the handle `attachRateLimit` returns.
 */
import type { AttemptContext, ExecuteOptions, Guard, RouteRequest } from '@lb/core';

/** An endpoint's budgets (the shape of `EndpointConfig.limits`). */
export interface EndpointLimits {
  /** Requests per second. */
  rps?: number;
  /** Requests per minute. */
  rpm?: number;
  /** Tokens per minute (estimated before sending, corrected by the response's `usage`). */
  tpm?: number;
  /** Most requests sent at once within the per-second budget (the rps bucket's size). Default: `rps` (at least 1). */
  burst?: number;
}

/** One budget's state in a snapshot. */
export interface BudgetSnapshot {
  /** The configured limit per window. */
  limit: number;
  /** Size of the bucket (burst). */
  capacity: number;
  /** Whole tokens available now (negative: a debt from usage above the estimate). */
  remaining: number;
}

/** The limiter guard's `describe()` for health pages: whole tokens left per budget, and a cooldown's end. */
export type RateLimitDescription = {
  rps?: number;
  rpm?: number;
  tpm?: number;
  /** Epoch ms until which the endpoint gets nothing. */
  cooldownUntil?: number;
};

/** What the limiter knows about one endpoint. Never a key. */
export interface RateLimitEndpointSnapshot {
  limits: EndpointLimits;
  rps: BudgetSnapshot | undefined;
  rpm: BudgetSnapshot | undefined;
  tpm: BudgetSnapshot | undefined;
  /** Epoch ms until which the endpoint gets nothing (upstream 429, or its headers said the budget is spent). */
  cooldownUntil: number | undefined;
  cooldownReason: string | undefined;
  /** The upstream's own view from its last `x-ratelimit-*` headers (counted down locally since). */
  upstream:
    | {
        remainingRequests: number | undefined;
        limitRequests: number | undefined;
        requestsResetAt: number | undefined;
        remainingTokens: number | undefined;
        limitTokens: number | undefined;
        tokensResetAt: number | undefined;
      }
    | undefined;
  /** The limiter admits a request now. */
  available: boolean;
  /** Why not, and until when. */
  reason: string | undefined;
  until: number | undefined;
}

/** What {@link attachRateLimit} returns. */
export interface RateLimitHandle {
  /** The guard registered on the router. */
  readonly guard: Guard;
  /** Budgets, cooldowns and upstream views per endpoint id (for health pages and `lb_ratelimit_remaining`). */
  snapshot(): Record<string, RateLimitEndpointSnapshot>;
  /** Refills an endpoint's buckets and clears its cooldown and header view (all endpoints without an id). */
  reset(endpointId?: string): void;
  /**
   * `router.execute` behind a bounded wait queue: when every endpoint is out of budget, at most `maxQueue` requests
   * wait (for up to the router's `maxWaitMs`); the others, and those whose wait ends without budget, get a
   * {@link RateLimitedError} (429) carrying the earliest retry time.
   *
   * @example
   * try { await limits.execute({ model }, attempt) } catch (e) { if (isRateLimitedError(e)) reply429(e.retryAfterMs) }
   */
  execute<T>(
    request: RouteRequest,
    attempt: (ctx: AttemptContext) => Promise<T>,
    options?: ExecuteOptions<T>,
  ): Promise<T>;
  /** Requests waiting for budget in {@link RateLimitHandle.execute} now. */
  readonly waiting: number;
  /** Errors of a remote store so far (ignored otherwise: a store outage never fails a request). */
  readonly storeErrors: number;
  /** Detaches the guard and every listener. Idempotent. */
  dispose(): void;
}
