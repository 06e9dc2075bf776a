import { LbError } from '@lb/core';

/**
 * Base of every error `@lb/providers` throws or returns: unknown dialects, routes no endpoint can serve, upstream
 * bodies that could not be translated. Renders as OpenAI's error JSON (`toOpenAIError()`).
 * Check with {@link isProviderError} (survives two copies of the package).
 *
 * @example
 * const problem = explainUnservable(router, { operation: 'embeddings', model: 'claude' });
 * if (problem) res.status(problem.status).json(problem.toOpenAIError());
 */
export class ProviderError extends LbError {
  readonly isProviderError = true;
  /** The provider (dialect name) concerned, if one. */
  readonly provider: string | undefined;

  constructor(
    message: string,
    opts: {
      status: number;
      code: string;
      type?: string;
      provider?: string;
      retryAfterMs?: number;
      cause?: unknown;
      param?: string;
    },
  ) {
    super(message, {
      status: opts.status,
      code: opts.code,
      type: opts.type ?? (opts.status >= 500 ? 'server_error' : 'invalid_request_error'),
      retryAfterMs: opts.retryAfterMs,
      cause: opts.cause,
      param: opts.param,
    });
    this.name = 'ProviderError';
    this.provider = opts.provider;
  }
}

/** True for a {@link ProviderError}, across package copies. */
export function isProviderError(e: unknown): e is ProviderError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { isProviderError?: unknown }).isProviderError === true &&
    e instanceof Error
  );
}
