/**
 * The bounded wait queue of `RateLimitHandle.execute`: `router.execute` when something can serve, else at most
 * `maxQueue` requests wait (up to the router's `maxWaitMs`); the others, and those whose wait ends without budget,
 * get a `RateLimitedError` (429) with the earliest retry time.
 */
import {
  type AttemptContext,
  type ExecuteOptions,
  isNoHealthyEndpointError,
  type RouteRequest,
} from '@lb/core';
import { RateLimitedError } from '../errors.js';
import type { LimiterContext } from './context.js';

export async function queuedExecute<T>(
  k: LimiterContext,
  request: RouteRequest,
  attempt: (ctx: AttemptContext) => Promise<T>,
  options: ExecuteOptions<T> | undefined,
): Promise<T> {
  const router = k.router;
  // Something can serve now: no queue at all.
  if (router.pick(request) !== undefined) return run(k, request, attempt, options);
  if (k.waiting >= k.maxQueue) {
    const now = k.now();
    const until = earliest(k, request, now);
    throw new RateLimitedError(
      `Rate limit reached on every endpoint and ${k.waiting} requests already wait${
        until === undefined ? '' : `; try again in ${Math.max(0, until - now)} ms`
      }`,
      { scope: 'queue', retryAfterMs: until === undefined ? 1000 : until - now },
    );
  }
  k.waiting++;
  try {
    return await run(k, request, attempt, options);
  } finally {
    k.waiting--;
  }
}

export async function run<T>(
  k: LimiterContext,
  request: RouteRequest,
  attempt: (ctx: AttemptContext) => Promise<T>,
  options: ExecuteOptions<T> | undefined,
): Promise<T> {
  try {
    return await k.router.execute(request, attempt, options);
  } catch (e) {
    // Refused before any attempt because every endpoint was out of budget: say so plainly.
    if (isNoHealthyEndpointError(e) && e.status === 429 && e.attempts.length === 0) {
      throw new RateLimitedError(e.message, {
        scope: 'endpoint',
        retryAfterMs: e.retryAfterMs ?? 1000,
        cause: e,
      });
    }
    throw e;
  }
}

/** Earliest time one of the request's endpoints admits again, by this limiter's account. */
export function earliest(k: LimiterContext, request: RouteRequest, now: number): number | undefined {
  let best: number | undefined;
  for (const ep of k.router.endpoints) {
    if (!ep.serves(request.model)) continue;
    const v = k.guard.admit(ep, request, now);
    if (v === true) return now;
    if (v.until !== undefined && (best === undefined || v.until < best)) best = v.until;
  }
  return best;
}
