import type { IBackoff, IBackoffFactory, IHalfOpenAfterBackoffContext } from 'cockatiel';

/** A failure the breaker counts: its masked message and the upstream's Retry-After, if it sent one. */
export class CountedFailure extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
    this.name = 'CountedFailure';
  }
}

/** An outcome the breaker must not count (a 429, a caller's abort): cockatiel lets unhandled errors through. */
export class NeutralOutcome extends Error {
  constructor() {
    super('neutral outcome');
    this.name = 'NeutralOutcome';
  }
}

export interface HalfOpenSchedule {
  baseMs: number;
  multiplier: number;
  maxMs: number;
  /** Longest Retry-After honoured, ms (0: ignore Retry-After). */
  maxRetryAfterMs: number;
}

/**
 * cockatiel's `halfOpenAfter` backoff: `baseMs * multiplier^(opens-1)` capped at `maxMs`, and at least the
 * Retry-After of the failure that opened the circuit (a 503 that says when to come back). `onDuration` tells the
 * owner the duration chosen, since cockatiel keeps it private, and whether a Retry-After set it.
 */
export function halfOpenBackoff(
  s: HalfOpenSchedule,
  onDuration: (ms: number, byRetryAfter: boolean) => void,
): IBackoffFactory<IHalfOpenAfterBackoffContext> {
  const factory: IBackoffFactory<IHalfOpenAfterBackoffContext> = {
    next(ctx): IBackoff<IHalfOpenAfterBackoffContext> {
      let duration = Math.min(s.maxMs, s.baseMs * s.multiplier ** Math.max(0, ctx.attempt - 1));
      const err = 'error' in ctx.result ? ctx.result.error : undefined;
      let byRetryAfter = false;
      if (s.maxRetryAfterMs > 0 && err instanceof CountedFailure && err.retryAfterMs !== undefined) {
        const asked = Math.min(err.retryAfterMs, s.maxRetryAfterMs);
        byRetryAfter = asked > duration;
        if (byRetryAfter) duration = asked;
      }
      onDuration(duration, byRetryAfter);
      return { duration, next: factory.next };
    },
  };
  return factory;
}
