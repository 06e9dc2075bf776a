import { isLbError, LbError } from '@lb/core';

/** Why a client key was refused. */
export type SpendErrorCode =
  | 'invalid_api_key'
  | 'key_expired'
  | 'model_not_allowed'
  | 'budget_exceeded'
  | 'rate_limit_exceeded';

/** Which budget ran out. */
export type BudgetName = 'usd_day' | 'usd_month' | 'tokens_day' | 'tokens_minute';

const STATUS: Record<SpendErrorCode, number> = {
  invalid_api_key: 401,
  key_expired: 401,
  model_not_allowed: 403,
  budget_exceeded: 429,
  rate_limit_exceeded: 429,
};

const TYPE: Record<SpendErrorCode, string> = {
  invalid_api_key: 'invalid_request_error',
  key_expired: 'invalid_request_error',
  model_not_allowed: 'invalid_request_error',
  budget_exceeded: 'insufficient_quota',
  // OpenAI's own answer to a tokens-per-minute limit: type `tokens`, code `rate_limit_exceeded`.
  rate_limit_exceeded: 'tokens',
};

/**
 * A client key was refused: unknown (401 `invalid_api_key`), expired (401 `key_expired`), not allowed this model
 * (403 `model_not_allowed`), over its tokens per minute (`tpm`: 429 `rate_limit_exceeded`, `retryAfterMs` to the
 * next minute), or over a budget (429 `budget_exceeded`, with `retryAfterMs` to the budget's reset:
 * send it as `Retry-After`). Renders as OpenAI's error JSON with `toOpenAIError()`. Never names the key itself: only
 * its configured name.
 *
 * Use {@link isSpendError} rather than `instanceof` (it survives two copies of the package).
 *
 * @example
 * if (isSpendError(e)) res.writeHead(e.status, e.retryAfterMs ? { 'retry-after': String(Math.ceil(e.retryAfterMs / 1000)) } : {}).end(JSON.stringify(e.toOpenAIError()));
 */
export class SpendError extends LbError {
  readonly isSpendError = true;
  declare readonly code: SpendErrorCode;
  /** The key's configured name, when it has one. */
  readonly keyName: string | undefined;
  /** For `budget_exceeded`: which budget. */
  readonly budget: BudgetName | undefined;
  /** For `budget_exceeded`: epoch ms when the budget resets (UTC midnight, or the first of next month). */
  readonly resetAt: number | undefined;

  constructor(
    code: SpendErrorCode,
    message: string,
    opts: {
      keyName?: string;
      budget?: BudgetName;
      resetAt?: number;
      retryAfterMs?: number;
      param?: string;
    } = {},
  ) {
    super(message, {
      status: STATUS[code],
      type: TYPE[code],
      code,
      ...(opts.retryAfterMs !== undefined ? { retryAfterMs: Math.max(0, Math.ceil(opts.retryAfterMs)) } : {}),
      ...(opts.param !== undefined ? { param: opts.param } : {}),
    });
    this.name = 'SpendError';
    this.keyName = opts.keyName;
    this.budget = opts.budget;
    this.resetAt = opts.resetAt;
  }
}

/** True for a {@link SpendError} (across package copies). */
export function isSpendError(e: unknown): e is SpendError {
  return isLbError(e) && (e as { isSpendError?: unknown }).isSpendError === true;
}
