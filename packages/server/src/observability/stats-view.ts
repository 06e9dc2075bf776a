// The `/stats` view: totals since start (requests, errors, attempts, failovers, fallbacks, a latency ring for
// percentiles) and the body built from them, the metrics' per-endpoint and per-model cells and the snapshots.
import type { BreakerSnapshot } from '@lb/breaker';
import type { RouterSnapshot } from '@lb/core';
import type { RateLimitEndpointSnapshot } from '@lb/ratelimit';
import type { Metrics } from './metrics.js';
import { round2, round3 } from './round.js';
import { remainingOf } from './sources.js';
import type { ClientRequestRecord, StatsBody } from './types.js';

/** Counts since start for `/stats`, and the latest request latencies (a ring) for its percentiles. */
export class Totals {
  requests = 0;
  errors = 0;
  streams = 0;
  attempts = 0;
  failovers = 0;
  fallbacks = 0;
  readonly fallbacksByCause = { context_window: 0, content_policy: 0, default: 0 };
  latencySumMs = 0;
  readonly byStatus = new Map<number, number>();
  readonly ring = new Float64Array(2048);
  ringN = 0;

  recordRequest(rec: ClientRequestRecord): void {
    const status = rec.status;
    const lat = rec.latencyMs;
    this.requests++;
    this.latencySumMs += lat;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    if (status >= 400) this.errors++;
    if (rec.stream) this.streams++;
    const ring = this.ring;
    ring[this.ringN++ & (ring.length - 1)] = lat;
    if (this.ringN >= 2 * ring.length) this.ringN -= ring.length;
  }
}

/** The `/stats` body. */
export function statsBody(
  t: number,
  startedAt: number,
  snap: RouterSnapshot,
  breakers: Record<string, BreakerSnapshot> | undefined,
  limits: Record<string, RateLimitEndpointSnapshot> | undefined,
  metrics: Metrics,
  totals: Totals,
): StatsBody {
  const endpoints: StatsBody['endpoints'] = {};
  let prompt = 0;
  let completion = 0;
  let total = 0;
  const errorsByKind: Record<string, number> = {};
  for (const [kind, c] of metrics.errorCells) errorsByKind[kind] = c.value;
  for (const ep of snap.endpoints) {
    const c = metrics.eps.get(ep.id);
    const s = ep.stats;
    endpoints[ep.id] = {
      state: ep.status,
      available: ep.available,
      breaker: breakers?.[ep.id]?.state,
      attempts: s.requests,
      successes: s.successes,
      failures: s.failures,
      successRate: round3(s.successRate),
      errorsByKind: { ...s.errorsByKind },
      inFlight: s.inFlight,
      latencyMs: s.latencySamples > 0 ? round2(s.ewmaLatencyMs) : undefined,
      tokens: { prompt: c?.prompt ?? 0, completion: c?.completion ?? 0, total: c?.total ?? 0 },
      rateLimit: remainingOf(limits?.[ep.id]),
    };
  }
  for (const c of metrics.eps.values()) {
    prompt += c.prompt;
    completion += c.completion;
    total += c.total;
  }
  const byModel: StatsBody['models'] = {};
  for (const m of metrics.models.values()) {
    if (m.requestsN === 0 && m.total === 0) continue;
    byModel[m.label] = {
      requests: m.requestsN,
      errors: m.errors,
      streams: m.streams,
      tokens: { prompt: m.prompt, completion: m.completion, total: m.total },
      latencyMs: { avg: m.requestsN ? round2(m.latencySumMs / m.requestsN) : 0 },
    };
  }
  const byStatus: Record<string, number> = {};
  for (const [k, v] of totals.byStatus) byStatus[k] = v;
  const ring = totals.ring;
  const n = Math.min(totals.ringN, ring.length);
  const sorted = ring.slice(0, n).sort();
  const pct = (q: number) => (n === 0 ? undefined : round2(sorted[Math.min(n - 1, Math.floor(q * n))]));
  return {
    time: new Date(t).toISOString(),
    uptimeSeconds: Math.round((t - startedAt) / 1000),
    totals: {
      requests: totals.requests,
      errors: totals.errors,
      streams: totals.streams,
      attempts: totals.attempts,
      failovers: totals.failovers,
      fallbacks: { total: totals.fallbacks, byCause: { ...totals.fallbacksByCause } },
      successRate: totals.requests ? round3((totals.requests - totals.errors) / totals.requests) : 1,
      tokens: { prompt, completion, total },
      byStatus,
      errorsByKind,
      latencyMs: {
        avg: totals.requests ? round2(totals.latencySumMs / totals.requests) : 0,
        p50: pct(0.5),
        p95: pct(0.95),
        p99: pct(0.99),
      },
    },
    endpoints,
    models: byModel,
  };
}
