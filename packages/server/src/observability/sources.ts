import type { BreakerSnapshot, HealthSnapshot } from '@lb/breaker';
import type { CircuitState } from '@lb/core';
import type { BudgetSnapshot, RateLimitEndpointSnapshot } from '@lb/ratelimit';

/** What observability reads from the attached breaker (`@lb/breaker`'s `BreakerHandle`). */
export interface BreakerSource {
  snapshot(): Record<string, BreakerSnapshot>;
}

/** What observability reads from the attached rate limiter (`@lb/ratelimit`'s `RateLimitHandle`). */
export interface RateLimitSource {
  snapshot(): Record<string, RateLimitEndpointSnapshot>;
}

/** What observability reads from the attached health checks (`@lb/breaker`'s `HealthCheckHandle`). */
export interface HealthCheckSource {
  snapshot(): Record<string, HealthSnapshot>;
}

/** Gauge value of a circuit state: 0 closed, 1 half-open, 2 open (isolated counts as open). */
export function breakerValue(s: CircuitState): number {
  return s === 'closed' ? 0 : s === 'half-open' ? 1 : 2;
}

/**
 * Remaining budgets of one endpoint's limiter snapshot: `{ rps, rpm, tpm }` for the configured budgets, and the
 * upstream's own view from its `x-ratelimit-*` headers as `upstream_requests` / `upstream_tokens`.
 */
export function remainingOf(s: RateLimitEndpointSnapshot | undefined): Record<string, number> | undefined {
  if (s === undefined) return undefined;
  let out: Record<string, number> | undefined;
  const put = (k: string, v: number | undefined) => {
    if (v !== undefined && Number.isFinite(v)) (out ??= {})[k] = v;
  };
  const budget = (k: string, b: BudgetSnapshot | undefined) => put(k, b?.remaining);
  budget('rps', s.rps);
  budget('rpm', s.rpm);
  budget('tpm', s.tpm);
  put('upstream_requests', s.upstream?.remainingRequests);
  put('upstream_tokens', s.upstream?.remainingTokens);
  return out;
}

/** Whether a limiter holds the endpoint back now (a cooldown, or a spent budget). */
export function rateLimited(s: RateLimitEndpointSnapshot | undefined, now: number): boolean {
  if (s === undefined) return false;
  if (!s.available) return true;
  return s.cooldownUntil !== undefined && s.cooldownUntil > now;
}

/** A health probe's last result as `/health` shows it (undefined: never probed). */
export function probeView(
  h: HealthSnapshot | undefined,
):
  | { ok: boolean | undefined; status: number | undefined; responseTimeMs: number | undefined; at: string }
  | undefined {
  if (h?.lastCheckAt === undefined) return undefined;
  return {
    ok: h.ok,
    status: h.status,
    responseTimeMs: h.responseTime,
    at: new Date(h.lastCheckAt).toISOString(),
  };
}

/** Calls a handle's `snapshot()`, never letting it break a health page. */
export function safeSnapshot<T>(
  h: { snapshot(): Record<string, T> } | undefined,
): Record<string, T> | undefined {
  if (!h) return undefined;
  try {
    return h.snapshot();
  } catch {
    return undefined;
  }
}
