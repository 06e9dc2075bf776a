/**
 * Pre-emptive throttling from the upstream's own `x-ratelimit-remaining-*` / `-reset-*` / `-limit-*` headers: the
 * view they give is counted down locally, and an endpoint whose remaining budget falls to the reserve cools down
 * until the reset.
 */
import { type Endpoint, getHeader, type HeadersLike, parseDuration } from '@lb/core';
import { stateOf } from './budgets.js';
import type { LimiterContext } from './context.js';
import { cool } from './cooldowns.js';

export function observe(k: LimiterContext, endpoint: Endpoint, headers: HeadersLike): void {
  const rr = getHeader(headers, 'x-ratelimit-remaining-requests');
  const rt = getHeader(headers, 'x-ratelimit-remaining-tokens');
  if (rr === undefined && rt === undefined) return;
  const now = k.now();
  const s = stateOf(k, endpoint);
  const v = s.view;
  if (rr !== undefined) {
    const n = Number(rr);
    if (rr.trim() !== '' && Number.isFinite(n)) {
      const reset = resetMs(k, getHeader(headers, 'x-ratelimit-reset-requests'));
      v.remainingRequests = n;
      v.requestsResetAt = now + reset;
      const lim = Number(getHeader(headers, 'x-ratelimit-limit-requests'));
      if (Number.isFinite(lim) && lim > 0) v.limitRequests = lim;
      if (n <= k.reserveRequests)
        cool(k, s, v.requestsResetAt, `upstream request budget spent (x-ratelimit-remaining-requests: ${n})`);
    }
  }
  if (rt !== undefined) {
    const n = Number(rt);
    if (rt.trim() !== '' && Number.isFinite(n)) {
      const reset = resetMs(k, getHeader(headers, 'x-ratelimit-reset-tokens'));
      v.remainingTokens = n;
      v.tokensResetAt = now + reset;
      const lim = Number(getHeader(headers, 'x-ratelimit-limit-tokens'));
      if (Number.isFinite(lim) && lim > 0) v.limitTokens = lim;
      if (n <= k.reserveTokens)
        cool(k, s, v.tokensResetAt, `upstream token budget spent (x-ratelimit-remaining-tokens: ${n})`);
    }
  }
}

export function resetMs(k: LimiterContext, text: string | undefined): number {
  const ms = parseDuration(text);
  // Without a reset time, trust the remaining count for a second.
  return Math.min(ms ?? 1000, k.maxCooldownMs);
}
