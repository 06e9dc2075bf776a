/**
 * The snapshot: everything a health page shows of a router — each endpoint's health, availability (with the guard
 * that refuses it), stream probation, statistics and guards' descriptions — keys masked.
 */
import type { EndpointStats, EndpointStatus } from '../state.js';
import { refresh } from './health.js';
import type { RouterState } from './router-state.js';
import { EMPTY_REQUEST } from './select.js';

/** A health page's view of one endpoint. Keys masked. */
export interface EndpointSnapshot {
  id: string;
  name: string;
  url: string;
  apiKey: string;
  provider: string;
  priority: number;
  weight: number;
  enabled: boolean;
  models: readonly string[];
  tags: readonly string[];
  status: EndpointStatus;
  reason: string | undefined;
  /** Epoch ms when a cooling or unhealthy endpoint comes back by itself. */
  until: number | undefined;
  /** Can take a request now (healthy and every guard admits). */
  available: boolean;
  /** Why not, when not. */
  unavailableReason: string | undefined;
  /** Its last stream broke after the first byte (see `AttemptContext.streamProbation`). */
  streamProbation: boolean;
  stats: EndpointStats & { successRate: number };
  guards: Record<string, Record<string, unknown>>;
}

export interface RouterSnapshot {
  strategy: string;
  at: number;
  summary: {
    total: number;
    available: number;
    healthy: number;
    coolingDown: number;
    unhealthy: number;
    disabled: number;
    requests: number;
    successRate: number;
  };
  endpoints: EndpointSnapshot[];
}

/** `Router.snapshot` (see there). */
export function snapshot(s: RouterState): RouterSnapshot {
  const now = s.now();
  const endpoints: EndpointSnapshot[] = [];
  let healthy = 0;
  let cooling = 0;
  let unhealthy = 0;
  let disabled = 0;
  let available = 0;
  let req = 0;
  let ok = 0;
  for (const rt of s.pool.runtimes) {
    refresh(s, rt, now);
    const ep = rt.endpoint;
    const h = rt.health;
    let unavailableReason: string | undefined = h.status === 'healthy' ? undefined : h.reason;
    const guards: Record<string, Record<string, unknown>> = {};
    for (const g of s.guards) {
      if (g.describe) guards[g.name] = g.describe(ep, now);
      if (!unavailableReason) {
        const v = g.admit(ep, EMPTY_REQUEST, now);
        if (v !== true) unavailableReason = `${g.name}: ${v.reason}`;
      }
    }
    if (!unavailableReason && ep.weight <= 0) unavailableReason = 'weight 0 (draining)';
    const isAvailable = unavailableReason === undefined;
    if (isAvailable) available++;
    if (h.status === 'healthy') healthy++;
    else if (h.status === 'cooling') cooling++;
    else if (h.status === 'unhealthy') unhealthy++;
    else disabled++;
    const st = rt.stats;
    req += st.successes + st.failures;
    ok += st.successes;
    endpoints.push({
      id: ep.id,
      name: ep.name,
      url: ep.url,
      apiKey: ep.maskedKey,
      provider: ep.provider,
      priority: ep.priority,
      weight: ep.weight,
      enabled: ep.enabled,
      models: ep.models,
      tags: ep.tags,
      status: h.status,
      reason: h.status === 'healthy' ? undefined : h.reason,
      until: 'until' in h ? h.until : undefined,
      available: isAvailable,
      unavailableReason,
      streamProbation: rt.streamBrokeAt !== 0,
      stats: {
        ...st,
        errorsByKind: { ...st.errorsByKind },
        successRate: st.successes + st.failures === 0 ? 1 : st.successes / (st.successes + st.failures),
      },
      guards,
    });
  }
  return {
    strategy: s.strategyName,
    at: now,
    summary: {
      total: endpoints.length,
      available,
      healthy,
      coolingDown: cooling,
      unhealthy,
      disabled,
      requests: req,
      successRate: req === 0 ? 1 : ok / req,
    },
    endpoints,
  };
}
