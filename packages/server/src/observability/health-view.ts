// The `/health` view: each endpoint as the router, the breaker and the health probes see it, the summary and the
// overall status (and its HTTP status).
import type { BreakerSnapshot, HealthSnapshot } from '@lb/breaker';
import type { EndpointSnapshot, RouterSnapshot } from '@lb/core';
import type { RateLimitEndpointSnapshot, StoreHealth } from '@lb/ratelimit';
import { round2, round3 } from './round.js';
import { probeView, rateLimited } from './sources.js';
import type { EndpointHealthView, HealthBody, OverallStatus, SharedStoreView } from './types.js';

/** What `/health` is built from, read at the moment it is asked for. */
export interface HealthInput {
  t: number;
  startedAt: number;
  version: string | undefined;
  snap: RouterSnapshot;
  breakers: Record<string, BreakerSnapshot> | undefined;
  probes: Record<string, HealthSnapshot> | undefined;
  limits: Record<string, RateLimitEndpointSnapshot> | undefined;
  store: StoreHealth | undefined;
  sharedStore: (() => SharedStoreView) | undefined;
}

/** The `/health` body and its HTTP status (503 when no endpoint can take a request). */
export function healthOf(i: HealthInput): { httpStatus: 200 | 503; body: HealthBody } {
  const { t, snap, breakers, probes, limits } = i;
  const endpoints = snap.endpoints.map((ep) => view(ep, breakers, probes, t));
  let limited = 0;
  let breakersOpen = 0;
  for (const v of endpoints) {
    if (v.state === 'cooling' || (v.state === 'healthy' && rateLimited(limits?.[v.id], t))) limited++;
    if (v.breaker === 'open' || v.breaker === 'isolated') breakersOpen++;
  }
  let status = overall(snap);
  // A degraded shared store: every replica serves on its share of the budgets alone.
  if (status === 'healthy' && i.store?.state === 'degraded') status = 'degraded';
  const s = snap.summary;
  const body: HealthBody = {
    status,
    time: new Date(t).toISOString(),
    version: i.version,
    uptimeSeconds: Math.round((t - i.startedAt) / 1000),
    strategy: snap.strategy,
    summary: {
      total: s.total,
      healthy: s.healthy,
      available: s.available,
      rateLimited: limited,
      coolingDown: s.coolingDown,
      unhealthy: s.unhealthy,
      disabled: s.disabled,
      breakersOpen,
      successRate: round3(s.successRate),
      attempts: s.requests,
      requests: s.requests,
    },
    endpoints,
  };
  if (i.sharedStore) body.sharedStore = i.sharedStore();
  return { httpStatus: status === 'unhealthy' ? 503 : 200, body };
}

function view(
  ep: EndpointSnapshot,
  breakers: Record<string, BreakerSnapshot> | undefined,
  probes: Record<string, HealthSnapshot> | undefined,
  t: number,
): EndpointHealthView {
  const s = ep.stats;
  return {
    id: ep.id,
    name: ep.name,
    provider: ep.provider,
    url: ep.url,
    apiKey: ep.apiKey,
    models: ep.models,
    priority: ep.priority,
    weight: ep.weight,
    state: ep.status,
    available: ep.available,
    reason: ep.unavailableReason ?? ep.reason,
    breaker: breakers?.[ep.id]?.state,
    successRate: round3(s.successRate),
    attempts: s.requests,
    requests: s.requests,
    successes: s.successes,
    errors: s.failures,
    consecutiveErrors: s.consecutiveErrors,
    errorsByKind: { ...s.errorsByKind },
    inFlight: s.inFlight,
    streamProbation: ep.streamProbation,
    latencyMs: s.latencySamples > 0 ? round2(s.ewmaLatencyMs) : undefined,
    lastLatencyMs: s.latencySamples > 0 ? round2(s.lastLatencyMs) : undefined,
    lastUsed: s.lastUsedAt > 0 ? new Date(s.lastUsedAt).toISOString() : undefined,
    lastErrorAt: s.lastErrorAt > 0 ? new Date(s.lastErrorAt).toISOString() : undefined,
    lastError: s.lastError,
    recoversAt: ep.until === undefined ? undefined : new Date(ep.until).toISOString(),
    recoversInMs: ep.until === undefined ? undefined : Math.max(0, ep.until - t),
    probe: probeView(probes?.[ep.id]),
  };
}

function overall(snap: RouterSnapshot): OverallStatus {
  const { available } = snap.summary;
  if (available === 0) return 'unhealthy';
  for (const ep of snap.endpoints) if (!ep.available && ep.status !== 'disabled') return 'degraded';
  return 'healthy';
}
