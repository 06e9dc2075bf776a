/**
 * The snapshot: budgets, cooldowns and the upstream's view per endpoint, for health pages and
 * `lb_ratelimit_remaining`. Never a key.
 */
import type { RouteRequest } from '@lb/core';
import { type Budget, level, stateOf } from './budgets.js';
import type { LimiterContext } from './context.js';
import type { RateLimitEndpointSnapshot } from './types.js';

const EMPTY: RouteRequest = Object.freeze({});

export function snapshot(k: LimiterContext): Record<string, RateLimitEndpointSnapshot> {
  const now = k.now();
  const out: Record<string, RateLimitEndpointSnapshot> = {};
  const store = k.store;
  for (const ep of k.router.endpoints) {
    const s = stateOf(k, ep);
    const budget = (b: Budget | undefined, limit: number | undefined) =>
      b === undefined || limit === undefined
        ? undefined
        : { limit, capacity: b.local.capacity, remaining: Math.floor(level(k, b, now)) };
    const cd = store.getCooldown(s.cooldownKey, now);
    const v = s.view;
    const live = v.requestsResetAt > now || v.tokensResetAt > now;
    const verdict = k.guard.admit(ep, EMPTY, now);
    out[ep.id] = {
      limits: { ...s.limits },
      rps: budget(s.rps, s.limits.rps),
      rpm: budget(s.rpm, s.limits.rpm),
      tpm: budget(s.tpm, s.limits.tpm),
      cooldownUntil: cd?.until,
      cooldownReason: cd?.reason,
      upstream: live
        ? {
            remainingRequests: v.requestsResetAt > now ? v.remainingRequests : undefined,
            limitRequests: v.limitRequests,
            requestsResetAt: v.requestsResetAt > now ? v.requestsResetAt : undefined,
            remainingTokens: v.tokensResetAt > now ? v.remainingTokens : undefined,
            limitTokens: v.limitTokens,
            tokensResetAt: v.tokensResetAt > now ? v.tokensResetAt : undefined,
          }
        : undefined,
      available: verdict === true,
      reason: verdict === true ? undefined : verdict.reason,
      until: verdict === true ? undefined : verdict.until,
    };
  }
  return out;
}
