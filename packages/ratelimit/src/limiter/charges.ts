/**
 * Token charges: the estimate a request is charged when its attempt starts, corrected by the response's usage or
 * refunded when the attempt fails.
 */
import type { Endpoint, Usage } from '@lb/core';
import { stateOf } from './budgets.js';
import type { LimiterContext } from './context.js';

export interface Charge {
  endpointId: string;
  tokens: number;
}

export const MAX_CHARGES = 10_000;

/** Charges `delta` more tokens (negative: a refund) to the endpoint's token budgets. */
export function correct(k: LimiterContext, endpoint: Endpoint, delta: number, now: number): void {
  if (delta === 0) return;
  const s = stateOf(k, endpoint);
  if (s.tpm !== undefined) k.store.adjust(s.tpm.key, -delta, s.tpm.local, now, s.tpm.spec);
  const v = s.view;
  if (v.tokensResetAt > now && v.remainingTokens !== undefined) v.remainingTokens -= delta;
}

/** Tokens a response used, from its usage. */
export function usedTokens(u: Usage): number | undefined {
  if (typeof u.total_tokens === 'number') return u.total_tokens;
  if (typeof u.prompt_tokens === 'number' || typeof u.completion_tokens === 'number')
    return (u.prompt_tokens ?? 0) + (u.completion_tokens ?? 0);
  return undefined;
}
