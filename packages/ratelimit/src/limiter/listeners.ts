/**
 * What the limiter learns from the router's bus: an upstream's headers on every answer, a 429's cooldown, the
 * refund of a failed attempt's tokens, the correction from a response's usage, a hand's override, removed endpoints.
 */

import { forget, stateOf } from './budgets.js';
import { correct, usedTokens } from './charges.js';
import type { LimiterContext } from './context.js';
import { setCooldown } from './cooldowns.js';
import { observe } from './upstream-headers.js';

/** Subscribes the limiter to the router's bus; returns the disposers. */
export function listen(k: LimiterContext): (() => void)[] {
  const router = k.router;
  return [
    // Enabled by hand: a hand outranks a learned 429 cooldown (budgets stay as they are).
    router.on('endpoint:override', (e) => {
      if (!e.healthy) return;
      const st = k.states.get(e.endpointId);
      if (st !== undefined) k.store.delete(st.cooldownKey);
    }),
    router.on('attempt:success', (e) => {
      if (e.headers !== undefined && k.headers) observe(k, e.endpoint, e.headers);
    }),
    router.on('attempt:failure', (e) => {
      const now = k.now();
      const c = k.charges.get(e.requestId);
      if (c !== undefined && c.endpointId === e.endpointId) {
        // A failed attempt used no tokens: give the estimate back.
        k.charges.delete(e.requestId);
        if (c.tokens > 0) correct(k, e.endpoint, -c.tokens, now);
      }
      if (e.headers !== undefined && k.headers) observe(k, e.endpoint, e.headers);
      if (e.kind === 'rate-limit') {
        const ms = Math.min(e.retryAfterMs ?? k.cooldownMs, k.maxCooldownMs);
        const s = stateOf(k, e.endpoint);
        setCooldown(k, s, {
          until: now + ms,
          reason: `upstream answered 429, cooling down ${Math.round(ms)} ms`,
        });
      }
    }),
    router.on('attempt:usage', (e) => {
      const c = k.charges.get(e.requestId);
      if (c === undefined || c.endpointId !== e.endpointId) return;
      k.charges.delete(e.requestId);
      const used = usedTokens(e.usage);
      if (used !== undefined) correct(k, e.endpoint, used - c.tokens, k.now());
    }),
    router.on('config:reloaded', (e) => {
      for (const id of e.removed) forget(k, id);
    }),
  ];
}
