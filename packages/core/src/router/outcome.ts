/**
 * What an attempt's outcome does to its endpoint's record: the statistics (latency average, failure counts, the
 * last error with the key masked), and the health a failure implies — a 429 cools the endpoint down (Retry-After,
 * else a doubling cooldown), a rejected key retires it.
 */
import type { OutcomeInput, Verdict } from '../classify.js';
import type { Endpoint } from '../endpoint.js';
import { redact } from '../mask.js';
import type { EndpointStats } from '../state.js';
import { ROUTER_DEFAULTS } from './config.js';
import { setHealth } from './health.js';
import type { Runtime } from './route-table.js';
import type { RouterState } from './router-state.js';

/** Feeds one latency into the endpoint's moving average. */
export function observeLatency(s: RouterState, stats: EndpointStats, ms: number): void {
  stats.lastLatencyMs = ms;
  stats.ewmaLatencyMs =
    stats.latencySamples === 0 ? ms : stats.ewmaLatencyMs + s.alpha * (ms - stats.ewmaLatencyMs);
  stats.latencySamples++;
}

/** A failure's message for stats and events, the endpoint's key masked. */
export function failureMessage(ep: Endpoint, verdict: Verdict, input: OutcomeInput): string {
  let msg: string;
  if (input.error !== undefined) {
    const e = input.error as { message?: unknown; cause?: { code?: unknown; message?: unknown } };
    msg = typeof e?.message === 'string' ? e.message : String(input.error);
    const code = e?.cause && typeof e.cause.code === 'string' ? e.cause.code : undefined;
    if (code && !msg.includes(code)) msg += ` (${code})`;
  } else {
    msg = verdict.status !== undefined ? `HTTP ${verdict.status}` : verdict.kind;
  }
  return redact(msg, [ep.apiKey]);
}

/** Counts a failed attempt and applies the health it implies (a cooldown after a 429, a retirement after a 401/403). */
export function recordFailure(
  s: RouterState,
  rt: Runtime,
  verdict: Verdict,
  message: string,
  now: number,
): void {
  const stats = rt.stats;
  stats.failures++;
  stats.consecutiveErrors++;
  stats.lastErrorAt = now;
  stats.lastError = message;
  if (verdict.status !== undefined) stats.lastStatus = verdict.status;
  stats.errorsByKind[verdict.kind] = (stats.errorsByKind[verdict.kind] ?? 0) + 1;
  const cfg = s.config;
  if (verdict.kind === 'rate-limit') {
    let ms = verdict.retryAfterMs;
    if (ms === undefined) {
      const base = cfg.rateLimitCooldownMs ?? ROUTER_DEFAULTS.rateLimitCooldownMs;
      ms = Math.min(cfg.maxCooldownMs ?? ROUTER_DEFAULTS.maxCooldownMs, base * 2 ** rt.rateLimitStreak);
    } else {
      ms = Math.min(ms, cfg.maxRetryAfterMs ?? ROUTER_DEFAULTS.maxRetryAfterMs);
    }
    rt.rateLimitStreak++;
    if (rt.health.status !== 'disabled') {
      setHealth(s, rt, {
        status: 'cooling',
        until: now + ms,
        reason: `rate limited (429), cooling down ${Math.round(ms)} ms`,
      });
    }
  } else if (verdict.kind === 'auth') {
    if (rt.health.status !== 'disabled') {
      const ms = cfg.keyRetireMs ?? ROUTER_DEFAULTS.keyRetireMs;
      setHealth(s, rt, {
        status: 'unhealthy',
        until: now + ms,
        reason: `key rejected (${verdict.status})`,
      });
    }
  }
}
