import type { EndpointSnapshot, EndpointStatus, Router } from '@lb/core';

/** One endpoint (one key) as a health page shows it. The key is masked. */
export interface KeyHealth {
  id: string;
  name: string;
  url: string;
  provider: string;
  /** The key, masked (`sk-proj...N0IA`). */
  maskedKey: string;
  /** In rotation and admitted by every guard right now. */
  healthy: boolean;
  /** The router's view: `healthy`, `cooling` (rate limited), `unhealthy` (key rejected / probe failed), `disabled`. */
  state: EndpointStatus;
  /** Why it is not available, when it is not (cooldown, open circuit, rate limit…). */
  reason: string | undefined;
  /** Successes / finished attempts, 0..1 (1 before any attempt). */
  successRate: number;
  /** Failed attempts so far. */
  errorCount: number;
  /** Attempts started so far. */
  requestCount: number;
  /** Epoch ms of the last attempt, null when never used. */
  lastUsed: number | null;
  /** Moving average of the time to response headers, ms; null before the first answer. */
  responseTimeMs: number | null;
  /** Cooling down after a 429, or vetoed by a rate limiter. */
  rateLimited: boolean;
  /** Epoch ms when it comes back by itself, null when it is available or only a hand brings it back. */
  recoveryTime: number | null;
}

/** What {@link keyHealthStatus} returns. */
export interface KeyHealthStatus {
  /** Endpoints that can take a request now. */
  healthy: number;
  total: number;
  endpoints: KeyHealth[];
}

/** One endpoint in {@link DetailedHealth}: {@link KeyHealth} plus routing settings and live counters. */
export interface DetailedEndpointHealth extends KeyHealth {
  priority: number;
  weight: number;
  enabled: boolean;
  models: readonly string[];
  tags: readonly string[];
  inFlight: number;
  consecutiveErrors: number;
  /** Last failure, key masked. */
  lastError: string | undefined;
  lastStatus: number | undefined;
  /** Failures by kind (`server`, `rate-limit`, `timeout`, …). */
  errorsByKind: Record<string, number>;
  /** What each attached guard (breaker, rate limiter) says about it. */
  guards: Record<string, Record<string, unknown>>;
}

/** What {@link detailedHealth} returns. */
export interface DetailedHealth {
  /** `healthy` when every endpoint is available, `degraded` when some are, `down` when none is. */
  status: 'healthy' | 'degraded' | 'down';
  healthy: number;
  total: number;
  strategy: string;
  /** Attempts finished across endpoints. */
  requests: number;
  successRate: number;
  coolingDown: number;
  unhealthy: number;
  disabled: number;
  /** Epoch ms of the snapshot. */
  at: number;
  endpoints: DetailedEndpointHealth[];
}

function keyHealth(e: EndpointSnapshot): KeyHealth {
  const s = e.stats;
  const rateLimited =
    e.status === 'cooling' || (e.unavailableReason !== undefined && /rate.?limit/i.test(e.unavailableReason));
  return {
    id: e.id,
    name: e.name,
    url: e.url,
    provider: e.provider,
    maskedKey: e.apiKey,
    healthy: e.available,
    state: e.status,
    reason: e.unavailableReason,
    successRate: s.successRate,
    errorCount: s.failures,
    requestCount: s.requests,
    lastUsed: s.lastUsedAt === 0 ? null : s.lastUsedAt,
    responseTimeMs: s.latencySamples === 0 ? null : Math.round(s.ewmaLatencyMs),
    rateLimited,
    recoveryTime: e.available ? null : (e.until ?? null),
  };
}

/**
 * Per-key health in the shape of the client wrappers people migrate from: healthy/total and, per endpoint, the masked
 * key, state, success rate, error count, last use, response time, rate limiting and recovery time.
 *
 * @example
 * const { healthy, total } = keyHealthStatus(router);
 * if (healthy === 0) alert(`all ${total} keys are down`);
 */
export function keyHealthStatus(router: Router): KeyHealthStatus {
  const snap = router.snapshot();
  return {
    healthy: snap.summary.available,
    total: snap.summary.total,
    endpoints: snap.endpoints.map(keyHealth),
  };
}

/**
 * Everything a health page shows: summary, strategy and, per endpoint, {@link KeyHealth} plus settings, live counters
 * and guard states. Keys masked.
 *
 * @example
 * app.get('/health', (_req, res) => res.json(detailedHealth(router)));
 */
export function detailedHealth(router: Router): DetailedHealth {
  const snap = router.snapshot();
  const sum = snap.summary;
  return {
    status: sum.available === 0 ? 'down' : sum.available === sum.total ? 'healthy' : 'degraded',
    healthy: sum.available,
    total: sum.total,
    strategy: snap.strategy,
    requests: sum.requests,
    successRate: sum.successRate,
    coolingDown: sum.coolingDown,
    unhealthy: sum.unhealthy,
    disabled: sum.disabled,
    at: snap.at,
    endpoints: snap.endpoints.map((e) => ({
      ...keyHealth(e),
      priority: e.priority,
      weight: e.weight,
      enabled: e.enabled,
      models: e.models,
      tags: e.tags,
      inFlight: e.stats.inFlight,
      consecutiveErrors: e.stats.consecutiveErrors,
      lastError: e.stats.lastError,
      lastStatus: e.stats.lastStatus,
      errorsByKind: e.stats.errorsByKind,
      guards: e.guards,
    })),
  };
}

/** Per-model statistics, from {@link modelInfo}. */
export interface ModelStats {
  model: string;
  /** Endpoints serving it, with the upstream name each sends. */
  endpoints: { id: string; upstreamModel: string; available: boolean }[];
  /** Requests finished (after failover), successes and failures. */
  requests: number;
  successes: number;
  failures: number;
  successRate: number;
  /** Mean request latency (to response headers, failovers included), ms; null before the first success. */
  avgLatencyMs: number | null;
  /** Epoch ms of the last finished request, null when never used. */
  lastUsed: number | null;
}

/** What {@link modelInfo} returns. */
export interface ModelInfo {
  /** The model helpers use when none is named. */
  defaultModel: string | undefined;
  /** Exposed model names (model groups plus every model an endpoint lists). */
  available: string[];
  /** Per model: configured ones first, then any model requested so far. */
  models: ModelStats[];
  totalRequests: number;
}

interface Counter {
  requests: number;
  successes: number;
  failures: number;
  latencySum: number;
  lastUsed: number;
}

const trackers = new WeakMap<Router, Map<string, Counter>>();

/**
 * Starts counting finished requests per model on a router (one subscription per router, to `request:done` and
 * `request:exhausted`: one event per request). Idempotent; returns the live counters.
 */
export function trackModels(router: Router): Map<string, Counter> {
  let map = trackers.get(router);
  if (map) return map;
  const m = new Map<string, Counter>();
  map = m;
  trackers.set(router, m);
  const counter = (model: string): Counter => {
    let c = m.get(model);
    if (!c) m.set(model, (c = { requests: 0, successes: 0, failures: 0, latencySum: 0, lastUsed: 0 }));
    return c;
  };
  router.on('request:done', (e) => {
    if (e.model === undefined) return;
    const c = counter(e.model);
    c.requests++;
    c.successes++;
    c.latencySum += e.latencyMs;
    c.lastUsed = Date.now();
  });
  router.on('request:exhausted', (e) => {
    if (e.model === undefined) return;
    const c = counter(e.model);
    c.requests++;
    c.failures++;
    c.lastUsed = Date.now();
  });
  return map;
}

/**
 * Model statistics: the exposed models, who serves each (with the upstream name) and, once {@link trackModels} runs
 * on the router (the adapter's clients start it), requests, success rate and latency per model.
 *
 * @example
 * const info = modelInfo(router, 'gpt-4o-mini');
 * console.table(info.models.map((m) => ({ model: m.model, requests: m.requests, ok: m.successRate })));
 */
export function modelInfo(router: Router, defaultModel?: string): ModelInfo {
  const counters = trackers.get(router);
  const names = router.models();
  const available = [...names];
  if (counters) for (const k of counters.keys()) if (!names.includes(k)) names.push(k);
  const snap = router.snapshot();
  const availableById = new Map(snap.endpoints.map((e) => [e.id, e.available]));
  const groups = router.config.models;
  let total = 0;
  const models = names.map((model): ModelStats => {
    const group = groups?.[model];
    const endpoints = group
      ? group.backends.map((b) => ({
          id: b.endpoint,
          upstreamModel: b.model ?? router.getEndpoint(b.endpoint)?.upstreamModel(model) ?? model,
          available: availableById.get(b.endpoint) ?? false,
        }))
      : router.endpoints
          .filter((ep) => ep.serves(model))
          .map((ep) => ({
            id: ep.id,
            upstreamModel: ep.upstreamModel(model),
            available: availableById.get(ep.id) ?? false,
          }));
    const c = counters?.get(model);
    total += c?.requests ?? 0;
    return {
      model,
      endpoints,
      requests: c?.requests ?? 0,
      successes: c?.successes ?? 0,
      failures: c?.failures ?? 0,
      successRate: c && c.requests > 0 ? c.successes / c.requests : 1,
      avgLatencyMs: c && c.successes > 0 ? Math.round(c.latencySum / c.successes) : null,
      lastUsed: c && c.lastUsed > 0 ? c.lastUsed : null,
    };
  });
  return { defaultModel, available, models, totalRequests: total };
}
