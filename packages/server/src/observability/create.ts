import type { BreakerSnapshot, HealthSnapshot } from '@lb/breaker';
import type { EndpointSnapshot, Router, RouterEvents, RouterSnapshot } from '@lb/core';
import { ConfigError } from '@lb/core';
import type { Registry } from 'prom-client';
import { type Cell, CounterFamily, type HistCell, HistogramFamily, SnapshotGauge } from './families.js';
import { createLogger, LEVELS } from './logger.js';
import { RequestLog } from './request-log.js';
import { breakerValue, probeView, rateLimited, remainingOf, safeSnapshot } from './sources.js';
import { logGuardState, logStoreChange, storeMetrics } from './store.js';
import type {
  EndpointHealthView,
  HealthBody,
  Observability,
  ObservabilityOptions,
  OverallStatus,
  StatsBody,
} from './types.js';

/** prom-client's `Registry.PROMETHEUS_CONTENT_TYPE` (the text exposition format 0.0.4). */
const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
/** Client-level buckets (seconds): LLM requests run from milliseconds to minutes. */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];
/** Time to first byte and upstream latency (to response headers). */
const FAST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Distinct model labels kept; beyond it (or for names no endpoint serves) the label is `other`. */
const MAX_MODEL_LABELS = 200;
/** Requests whose failure awaits the next attempt (to count the failover); bounded against aborted requests. */
const MAX_PENDING_FAILOVERS = 10_000;
/** A failover still waiting for its next attempt after this long belongs to a request that was given up on. */
const STALE_FAILOVER_MS = 10 * 60_000;
const STATES = ['healthy', 'cooling', 'unhealthy', 'disabled'] as const;

interface EpCells {
  readonly attempts: Map<string, Cell>;
  readonly latency: Map<string, HistCell>;
  readonly tokens: Map<string, [Cell, Cell, Cell]>;
  prompt: number;
  completion: number;
  total: number;
}

interface ModelCells {
  readonly label: string;
  /** By status: [non-stream, stream]. */
  readonly requests: Map<number, [Cell, Cell]>;
  /** By serving endpoint id (`none` when none answered): [duration, duration stream, ttfb, ttfb stream]. */
  readonly latency: Map<string, [HistCell, HistCell, HistCell, HistCell]>;
  requestsN: number;
  errors: number;
  streams: number;
  latencySumMs: number;
  prompt: number;
  completion: number;
  total: number;
}

/**
 * Builds the server's observability over a router: a pino logger, Prometheus metrics in a registry of its own,
 * `/health` and `/stats` bodies and the JSON Lines request log. Everything about endpoints and attempts comes from
 * `router.on(...)` and `router.snapshot()`.
 *
 * @example
 * ```ts
 * const obs = createObservability(router, { metricsEnabled: true, logLevel: 'info', requestLog: { enabled: false } });
 * // in the HTTP server:
 * //   GET /metrics → res.setHeader('content-type', obs.metricsContentType); res.end(await obs.metricsText());
 * //   GET /health  → const { httpStatus, body } = obs.health(); res.writeHead(httpStatus).end(JSON.stringify(body));
 * //   per request  → obs.recordRequest({ requestId, client, method, path, model, stream, status, latencyMs, attempts: 1 });
 * await obs.close();
 * ```
 */
export function createObservability(router: Router, options: ObservabilityOptions = {}): Observability {
  if (!router || typeof router.on !== 'function' || typeof router.snapshot !== 'function') {
    throw new ConfigError(
      `createObservability: expected a router from @lb/core, received ${describe(router)}`,
    );
  }
  if (options === null || typeof options !== 'object') {
    throw new ConfigError(`createObservability: options must be an object, received ${describe(options)}`);
  }
  const metricsEnabled = options.metricsEnabled ?? true;
  if (typeof metricsEnabled !== 'boolean') {
    throw new ConfigError(
      `createObservability: metricsEnabled must be a boolean, received ${describe(metricsEnabled)}`,
    );
  }
  const level = (options.logLevel ?? 'info').toLowerCase();
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(
      `createObservability: logLevel must be one of ${LEVELS.join(', ')}, received ${describe(options.logLevel)}`,
    );
  }
  const rl = options.requestLog ?? { enabled: false };
  if (typeof rl !== 'object' || typeof rl.enabled !== 'boolean') {
    throw new ConfigError(
      `createObservability: requestLog must be { enabled: boolean, path? }, received ${describe(rl)}`,
    );
  }
  if (rl.path !== undefined && (typeof rl.path !== 'string' || rl.path === '')) {
    throw new ConfigError(
      `createObservability: requestLog.path must be a non-empty string, received ${describe(rl.path)}`,
    );
  }
  if (options.debug !== undefined && typeof options.debug !== 'string') {
    throw new ConfigError(`createObservability: debug must be a string, received ${describe(options.debug)}`);
  }
  if (options.logDestination !== undefined && typeof options.logDestination?.write !== 'function') {
    throw new ConfigError(
      `createObservability: logDestination must be a writable stream, received ${describe(options.logDestination)}`,
    );
  }
  for (const k of ['breaker', 'rateLimit', 'healthChecks'] as const) {
    const h = options[k];
    if (h !== undefined && typeof h?.snapshot !== 'function') {
      throw new ConfigError(
        `createObservability: ${k} must have a snapshot() method, received ${describe(h)}`,
      );
    }
  }
  const now = options.now ?? Date.now;
  const startedAt = now();

  // ------------------------------------------------------------------ logs
  const secrets = () => {
    const out: string[] = [];
    for (const ep of router.endpoints) {
      const k = ep.apiKey;
      if (k) out.push(k);
    }
    return out;
  };
  const { logger, routing, flush } = createLogger(level, options.debug, options.logDestination, secrets);
  const requestLog = rl.enabled ? new RequestLog(rl.path) : undefined;

  // ------------------------------------------------------------------ metrics
  const requestsTotal = new CounterFamily(
    'lb_requests_total',
    'Client requests by model, status and stream.',
    ['model', 'status', 'stream'],
  );
  const requestDuration = new HistogramFamily(
    'lb_request_duration_seconds',
    'Client request duration, first byte in to last byte out.',
    ['endpoint', 'model', 'stream'],
    REQUEST_BUCKETS,
  );
  const ttfbHist = new HistogramFamily(
    'lb_time_to_first_byte_seconds',
    'Time from the client request to the first byte sent back.',
    ['endpoint', 'model', 'stream'],
    FAST_BUCKETS,
  );
  const attemptsTotal = new CounterFamily(
    'lb_upstream_attempts_total',
    'Upstream attempts by endpoint and outcome (success, client, server, network, timeout, rate-limit, auth, aborted).',
    ['endpoint', 'outcome'],
  );
  const upstreamLatency = new HistogramFamily(
    'lb_upstream_latency_seconds',
    'Upstream attempt latency to response headers, by endpoint and model.',
    ['endpoint', 'model'],
    FAST_BUCKETS,
  );
  const failovers = new CounterFamily(
    'lb_failovers_total',
    'Failovers to another attempt, by the failing endpoint and why.',
    ['from_endpoint', 'reason'],
  );
  const errorsTotal = new CounterFamily(
    'lb_errors_total',
    'Upstream errors by class (server, network, timeout, rate-limit, auth, stream); client errors are not counted.',
    ['kind'],
  );
  const exhaustedTotal = new CounterFamily(
    'lb_requests_exhausted_total',
    'Requests that failed on every endpoint tried.',
    ['model'],
  );
  const fallbacksTotal = new CounterFamily(
    'lb_fallbacks_total',
    'Requests moved on to the next model of a fallback chain (from, to: configured models or "other"; cause).',
    ['from', 'to', 'cause'],
  );
  const tokensTotal = new CounterFamily(
    'lb_tokens_total',
    'Tokens reported by upstreams, by endpoint, model and type.',
    ['endpoint', 'model', 'type'],
  );
  const spendTotal = new CounterFamily(
    'lb_spend_usd_total',
    'What requests cost, USD (priced models only), by endpoint, model and named client key.',
    ['endpoint', 'model', 'key'],
  );
  // Bounded key labels: named keys only, at most 100, then `(other)`; unnamed keys are `none`.
  const spendKeys = new Set<string>();
  const stateChanges = new CounterFamily(
    'lb_endpoint_state_changes_total',
    'Endpoint state transitions, by new state.',
    ['endpoint', 'state'],
  );
  const reloads = new CounterFamily('lb_config_reloads_total', 'Configuration reloads applied.', []);
  // Hedged requests and stream continuation (the `hedge` and `stream:continued` events).
  const hedgesStarted = new CounterFamily(
    'lb_hedges_started_total',
    'Hedges sent: second attempts of requests whose first had not answered within the hedge delay.',
    [],
  );
  const hedgesWon = new CounterFamily(
    'lb_hedges_won_total',
    'Hedges that answered before the first attempt.',
    [],
  );
  const continuations = new CounterFamily(
    'lb_stream_continuations_total',
    'Chat streams that broke after content and were continued on another endpoint.',
    [],
  );
  const endpointUp = new SnapshotGauge(
    'lb_endpoint_up',
    'Whether the endpoint can take a request now (1) or not (0).',
  );
  const endpointState = new SnapshotGauge('lb_endpoint_state', 'Endpoint state: 1 for the current state.');
  const endpointInFlight = new SnapshotGauge(
    'lb_endpoint_in_flight',
    'Attempts and streams running on the endpoint.',
  );
  const endpointEwma = new SnapshotGauge(
    'lb_endpoint_latency_ewma_seconds',
    'Moving average of attempt latency.',
  );
  const endpointSuccess = new SnapshotGauge(
    'lb_endpoint_success_ratio',
    'Successful attempts / all attempts (0..1).',
  );
  const probationGauge = new SnapshotGauge(
    'lb_endpoint_stream_probation',
    "1 while the endpoint's streams are held back whole (its last stream broke after the first byte).",
  );
  const heldGauge = new SnapshotGauge(
    'lb_stream_probation_held_bytes',
    'Bytes held in memory by streams held back whole for stream probation (bounded by STREAM_PROBATION_MAX_BYTES).',
  );
  const breakerGauge = new SnapshotGauge(
    'lb_breaker_state',
    'Circuit breaker state: 0 closed, 1 half-open, 2 open.',
  );
  const rateGauge = new SnapshotGauge(
    'lb_ratelimit_remaining',
    'Remaining rate-limit budget per endpoint and limit.',
  );
  const probeGauge = new SnapshotGauge('lb_health_probe_seconds', 'Response time of the last health probe.');
  // prom-client (~2 MB of RSS, and its process collectors) loads at the first scrape: the hot path only touches the
  // families' own cells, and an idle proxy that is never scraped does not need it.
  const families = [
    requestsTotal,
    requestDuration,
    ttfbHist,
    attemptsTotal,
    upstreamLatency,
    failovers,
    errorsTotal,
    exhaustedTotal,
    fallbacksTotal,
    tokensTotal,
    spendTotal,
    stateChanges,
    reloads,
    hedgesStarted,
    hedgesWon,
    continuations,
    endpointUp,
    endpointState,
    endpointInFlight,
    endpointEwma,
    endpointSuccess,
    probationGauge,
    heldGauge,
    breakerGauge,
    rateGauge,
    probeGauge,
  ];
  const store = options.store;
  const storeObs = store ? storeMetrics(store) : undefined;
  if (storeObs) families.push(...(storeObs.families as never[]));
  let registries: Promise<{ own: Registry; process: Registry | undefined }> | undefined;
  const loadRegistries = () =>
    (registries ??= import('prom-client').then(({ collectDefaultMetrics, Gauge, Registry }) => {
      const own = new Registry();
      for (const m of families) own.registerMetric(m as never);
      new Gauge({
        name: 'lb_build_info',
        help: 'lb-server version.',
        labelNames: ['version'],
        registers: [own],
      }).set({ version: options.version ?? 'unknown' }, 1);
      const process =
        (options.processMetrics ?? true) ? sharedProcessRegistry(Registry, collectDefaultMetrics) : undefined;
      return { own, process };
    }));
  const reloadCell = reloads.cell();

  // ------------------------------------------------------------------ per endpoint / model cells
  const eps = new Map<string, EpCells>();
  const epCells = (id: string): EpCells => {
    let c = eps.get(id);
    if (!c) {
      c = { attempts: new Map(), latency: new Map(), tokens: new Map(), prompt: 0, completion: 0, total: 0 };
      eps.set(id, c);
    }
    return c;
  };
  let known = new Set(router.models());
  const modelLabels = new Map<string, string>();
  /**
   * Only models the config names become labels (up to `MAX_MODEL_LABELS`); any other name — even one an endpoint
   * serving every model answered 2xx for — is `other`, so clients cannot grow the scrape with made-up names.
   */
  const modelLabel = (model: string | undefined, _trusted: boolean): string => {
    if (model === undefined) return 'none';
    const l = modelLabels.get(model);
    if (l !== undefined) return l;
    if (modelLabels.size >= MAX_MODEL_LABELS || !known.has(model)) return 'other';
    modelLabels.set(model, model);
    return model;
  };
  const models = new Map<string, ModelCells>();
  const modelCells = (label: string): ModelCells => {
    let c = models.get(label);
    if (!c) {
      c = {
        label,
        requests: new Map(),
        latency: new Map(),
        requestsN: 0,
        errors: 0,
        streams: 0,
        latencySumMs: 0,
        prompt: 0,
        completion: 0,
        total: 0,
      };
      models.set(label, c);
    }
    return c;
  };
  const errorCells = new Map<string, Cell>();
  const countError = (kind: string) => {
    let c = errorCells.get(kind);
    if (!c) {
      c = errorsTotal.cell(kind);
      errorCells.set(kind, c);
    }
    c.value++;
  };

  // ------------------------------------------------------------------ totals for /stats
  const totals = {
    requests: 0,
    errors: 0,
    streams: 0,
    attempts: 0,
    failovers: 0,
    fallbacks: 0,
    fallbacksByCause: { context_window: 0, content_policy: 0, default: 0 },
    latencySumMs: 0,
    byStatus: new Map<number, number>(),
  };

  // ------------------------------------------------------------------ bus
  const offs: Array<() => void> = [];
  const on = <E extends keyof RouterEvents>(e: E, fn: (p: RouterEvents[E]) => void) =>
    offs.push(router.on(e, fn));
  /**
   * Failovers awaiting their next attempt (counted then, with the endpoint and reason they left). `request:done` is
   * listened to only while one is waiting, to forget those whose request ended without another attempt: the router
   * builds and emits that event for no one the rest of the time.
   */
  const pending = new Map<string, { from: string; reason: string; at: number }>();
  let offDone: (() => void) | undefined;
  const forget = (requestId: string) => {
    if (pending.delete(requestId) && pending.size === 0 && offDone) {
      offDone();
      offDone = undefined;
    }
  };
  const onDone = (e: RouterEvents['request:done']) => {
    // A request the caller gave up on between two attempts ends with no event: its entry goes after 10 minutes.
    const oldest = pending.entries().next().value;
    if (oldest !== undefined && Date.now() - oldest[1].at > STALE_FAILOVER_MS) forget(oldest[0]);
    forget(e.requestId);
  };
  const remember = (requestId: string, from: string, reason: string) => {
    if (pending.size >= MAX_PENDING_FAILOVERS) pending.delete(pending.keys().next().value as string);
    pending.set(requestId, { from, reason, at: Date.now() });
    offDone ??= router.on('request:done', onDone);
  };

  const attemptCell = (c: EpCells, endpointId: string, outcome: string): Cell => {
    let cell = c.attempts.get(outcome);
    if (!cell) {
      cell = attemptsTotal.cell(endpointId, outcome);
      c.attempts.set(outcome, cell);
    }
    return cell;
  };
  const latencyCell = (c: EpCells, endpointId: string, model: string | undefined): HistCell => {
    const m = modelLabel(model, true);
    let cell = c.latency.get(m);
    if (!cell) {
      cell = upstreamLatency.cell(endpointId, m);
      c.latency.set(m, cell);
    }
    return cell;
  };

  if (routing) {
    on('endpoint:selected', (e) =>
      routing.debug(
        {
          requestId: e.requestId,
          endpointId: e.endpointId,
          strategy: e.strategy,
          candidates: e.candidates,
          attempt: e.attempt,
          model: e.model,
        },
        'endpoint selected',
      ),
    );
  }
  on('attempt:start', (e) => {
    totals.attempts++;
    if (e.attempt > 1 && pending.size > 0) {
      const p = pending.get(e.requestId);
      if (p) {
        forget(e.requestId);
        failovers.cell(p.from, p.reason).value++;
        totals.failovers++;
      }
    }
    routing?.debug(
      {
        requestId: e.requestId,
        endpointId: e.endpointId,
        attempt: e.attempt,
        model: e.model,
        upstreamModel: e.upstreamModel,
      },
      'attempt start',
    );
  });
  on('attempt:success', (e) => {
    const c = epCells(e.endpointId);
    attemptCell(c, e.endpointId, e.status !== undefined && e.status >= 400 ? 'client' : 'success').value++;
    upstreamLatency.observe(latencyCell(c, e.endpointId, e.model), e.latencyMs / 1000);
    routing?.debug(
      {
        requestId: e.requestId,
        endpointId: e.endpointId,
        attempt: e.attempt,
        status: e.status,
        latencyMs: e.latencyMs,
      },
      'attempt success',
    );
  });
  on('attempt:failure', (e) => {
    const c = epCells(e.endpointId);
    attemptCell(c, e.endpointId, e.kind).value++;
    upstreamLatency.observe(latencyCell(c, e.endpointId, e.model), e.latencyMs / 1000);
    if (e.kind !== 'aborted' && e.kind !== 'client') countError(e.kind);
    if (e.failover && e.kind !== 'aborted') {
      remember(e.requestId, e.endpointId, e.kind);
    } else if (pending.size > 0) forget(e.requestId);
    const fields = {
      requestId: e.requestId,
      endpointId: e.endpointId,
      attempt: e.attempt,
      kind: e.kind,
      status: e.status,
      retryAfterMs: e.retryAfterMs,
      latencyMs: Math.round(e.latencyMs),
      failover: e.failover,
      reason: e.message,
    };
    if (e.kind === 'aborted' || e.kind === 'client')
      (routing ?? logger).debug(fields, 'upstream attempt failed');
    else logger.warn(fields, 'upstream attempt failed');
  });
  on('attempt:end', (e) => {
    if (e.ok) {
      routing?.debug(
        { requestId: e.requestId, endpointId: e.endpointId, durationMs: e.durationMs },
        'stream end',
      );
      return;
    }
    if (e.kind === 'aborted') return;
    countError('stream');
    logger.warn(
      {
        requestId: e.requestId,
        endpointId: e.endpointId,
        kind: e.kind,
        durationMs: Math.round(e.durationMs),
        reason: e.message,
      },
      'upstream stream broke',
    );
  });
  on('attempt:usage', (e) => {
    const c = epCells(e.endpointId);
    const m = modelLabel(e.model, true);
    let cells = c.tokens.get(m);
    if (!cells) {
      cells = [
        tokensTotal.cell(e.endpointId, m, 'prompt'),
        tokensTotal.cell(e.endpointId, m, 'completion'),
        tokensTotal.cell(e.endpointId, m, 'total'),
      ];
      c.tokens.set(m, cells);
    }
    const u = e.usage;
    const p = num(u.prompt_tokens);
    const k = num(u.completion_tokens);
    const t = num(u.total_tokens) || p + k;
    cells[0].value += p;
    cells[1].value += k;
    cells[2].value += t;
    c.prompt += p;
    c.completion += k;
    c.total += t;
    const mc = modelCells(m);
    mc.prompt += p;
    mc.completion += k;
    mc.total += t;
  });
  on('endpoint:state', (e) => {
    stateChanges.cell(e.endpointId, e.to).value++;
    const fields = {
      endpointId: e.endpointId,
      from: e.from,
      to: e.to,
      reason: e.reason,
      until: e.until === undefined ? undefined : new Date(e.until).toISOString(),
    };
    if (e.to === 'healthy') logger.info(fields, 'endpoint recovered');
    else logger.warn(fields, 'endpoint state changed');
  });
  on('endpoint:probation', (e) => {
    const fields = { endpointId: e.endpointId, requestId: e.requestId };
    if (e.on) logger.warn(fields, 'endpoint on stream probation: a stream broke after its first byte');
    else logger.info(fields, 'endpoint off stream probation');
  });
  on('fallback', (e) => {
    totals.fallbacks++;
    totals.fallbacksByCause[e.cause]++;
    fallbacksTotal.cell(modelLabel(e.from, true), modelLabel(e.to, true), e.cause).value++;
    logger.info({ requestId: e.requestId, from: e.from, to: e.to, cause: e.cause }, 'model fallback');
  });
  on('request:exhausted', (e) => {
    if (pending.size > 0) forget(e.requestId);
    exhaustedTotal.cell(modelLabel(e.model, true)).value++;
    logger.warn(
      {
        requestId: e.requestId,
        model: e.model,
        status: e.error.status,
        attempts: e.attempts.map((a) => ({ endpointId: a.endpointId, kind: a.kind, status: a.status })),
      },
      'request failed on every endpoint',
    );
  });
  const hedgeStartedCell = hedgesStarted.cell();
  const hedgeWonCell = hedgesWon.cell();
  const continuedCell = continuations.cell();
  on('hedge', (e) => {
    if (e.phase === 'started') hedgeStartedCell.value++;
    else if (e.phase === 'won') hedgeWonCell.value++;
  });
  on('stream:continued', () => {
    continuedCell.value++;
  });
  on('config:reloaded', (e) => {
    reloadCell.value++;
    known = new Set(router.models());
    for (const id of e.removed) {
      eps.delete(id);
      attemptsTotal.drop('endpoint', id);
      upstreamLatency.drop('endpoint', id);
      tokensTotal.drop('endpoint', id);
      stateChanges.drop('endpoint', id);
      failovers.drop('from_endpoint', id);
      requestDuration.drop('endpoint', id);
      ttfbHist.drop('endpoint', id);
      for (const m of models.values()) m.latency.delete(id);
    }
    logger.info({ added: e.added, removed: e.removed, changed: e.changed }, 'configuration reloaded');
  });
  on('guard:changed', (e) => logger.debug({ guard: e.name, attached: e.attached }, 'guard changed'));
  // Guards, health probes and the shared store publish their typed state on the router's bus: one bus to read.
  on('guard:state', logGuardState(logger));
  on('store:state', logStoreChange(logger));
  on('probe:result', (e) => {
    if (!e.ok)
      logger.debug(
        { endpointId: e.endpointId, kind: e.kind, status: e.status, action: e.action, reason: e.error },
        'health probe failed',
      );
  });

  // ------------------------------------------------------------------ latency ring for /stats percentiles
  const ring = new Float64Array(2048);
  let ringN = 0;

  // ------------------------------------------------------------------ views
  const view = (
    ep: EndpointSnapshot,
    breakers: Record<string, BreakerSnapshot> | undefined,
    probes: Record<string, HealthSnapshot> | undefined,
    t: number,
  ): EndpointHealthView => {
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
  };

  const overall = (snap: RouterSnapshot): OverallStatus => {
    const { available } = snap.summary;
    if (available === 0) return 'unhealthy';
    for (const ep of snap.endpoints) if (!ep.available && ep.status !== 'disabled') return 'degraded';
    return 'healthy';
  };

  let closed = false;

  const obs: Observability = {
    logger,
    metricsContentType: PROMETHEUS_CONTENT_TYPE,

    async metricsText() {
      if (!metricsEnabled) return '';
      const snap = router.snapshot();
      const breakers = safeSnapshot(options.breaker);
      const limits = safeSnapshot(options.rateLimit);
      const probes = safeSnapshot(options.healthChecks);
      const up: typeof endpointUp.values = [];
      const st: typeof endpointUp.values = [];
      const inflight: typeof endpointUp.values = [];
      const ewma: typeof endpointUp.values = [];
      const success: typeof endpointUp.values = [];
      const probation: typeof endpointUp.values = [];
      const br: typeof endpointUp.values = [];
      const rate: typeof endpointUp.values = [];
      const probe: typeof endpointUp.values = [];
      for (const ep of snap.endpoints) {
        const labels = { endpoint: ep.id };
        up.push({ labels, value: ep.available ? 1 : 0 });
        for (const s of STATES)
          st.push({ labels: { endpoint: ep.id, state: s }, value: ep.status === s ? 1 : 0 });
        inflight.push({ labels, value: ep.stats.inFlight });
        if (ep.stats.latencySamples > 0) ewma.push({ labels, value: ep.stats.ewmaLatencyMs / 1000 });
        success.push({ labels, value: ep.stats.successRate });
        probation.push({ labels, value: ep.streamProbation ? 1 : 0 });
        const b = breakers?.[ep.id]?.state;
        if (b) br.push({ labels, value: breakerValue(b) });
        const r = remainingOf(limits?.[ep.id]);
        if (r) for (const k in r) rate.push({ labels: { endpoint: ep.id, limit: k }, value: r[k] });
        const p = probes?.[ep.id]?.responseTime;
        if (p !== undefined) probe.push({ labels, value: p / 1000 });
      }
      endpointUp.values = up;
      endpointState.values = st;
      endpointInFlight.values = inflight;
      endpointEwma.values = ewma;
      endpointSuccess.values = success;
      probationGauge.values = probation;
      if (options.heldBytes) heldGauge.values = [{ labels: {}, value: options.heldBytes() }];
      breakerGauge.values = br;
      rateGauge.values = rate;
      probeGauge.values = probe;
      storeObs?.refresh();
      const reg = await loadRegistries();
      const own = await reg.own.metrics();
      return reg.process ? own + (await reg.process.metrics()) : own;
    },

    health() {
      const t = now();
      const snap = router.snapshot();
      const breakers = safeSnapshot(options.breaker);
      const probes = safeSnapshot(options.healthChecks);
      const limits = safeSnapshot(options.rateLimit);
      const endpoints = snap.endpoints.map((ep) => view(ep, breakers, probes, t));
      let limited = 0;
      let breakersOpen = 0;
      for (const v of endpoints) {
        if (v.state === 'cooling' || (v.state === 'healthy' && rateLimited(limits?.[v.id], t))) limited++;
        if (v.breaker === 'open' || v.breaker === 'isolated') breakersOpen++;
      }
      let status = overall(snap);
      // A degraded shared store: every replica serves on its share of the budgets alone.
      if (status === 'healthy' && store?.state === 'degraded') status = 'degraded';
      const s = snap.summary;
      const body: HealthBody = {
        status,
        time: new Date(t).toISOString(),
        version: options.version,
        uptimeSeconds: Math.round((t - startedAt) / 1000),
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
      if (options.sharedStore) body.sharedStore = options.sharedStore();
      return { httpStatus: status === 'unhealthy' ? 503 : 200, body };
    },

    stats() {
      const t = now();
      const snap = router.snapshot();
      const breakers = safeSnapshot(options.breaker);
      const limits = safeSnapshot(options.rateLimit);
      const endpoints: StatsBody['endpoints'] = {};
      let prompt = 0;
      let completion = 0;
      let total = 0;
      const errorsByKind: Record<string, number> = {};
      for (const [kind, c] of errorCells) errorsByKind[kind] = c.value;
      for (const ep of snap.endpoints) {
        const c = eps.get(ep.id);
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
      for (const c of eps.values()) {
        prompt += c.prompt;
        completion += c.completion;
        total += c.total;
      }
      const byModel: StatsBody['models'] = {};
      for (const m of models.values()) {
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
      const n = Math.min(ringN, ring.length);
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
    },

    recordRequest(rec) {
      if (closed) return;
      const status = rec.status;
      const failed = status >= 400;
      const m = modelCells(modelLabel(rec.model, !failed));
      const si = rec.stream ? 1 : 0;
      let pair = m.requests.get(status);
      if (!pair) {
        const s = String(status);
        pair = [requestsTotal.cell(m.label, s, 'false'), requestsTotal.cell(m.label, s, 'true')];
        m.requests.set(status, pair);
      }
      pair[si].value++;
      const lat = rec.latencyMs;
      // Only ids of configured endpoints become labels.
      const ep = rec.endpointId !== undefined && router.getEndpoint(rec.endpointId) ? rec.endpointId : 'none';
      let h = m.latency.get(ep);
      if (!h) {
        h = [
          requestDuration.cell(ep, m.label, 'false'),
          requestDuration.cell(ep, m.label, 'true'),
          ttfbHist.cell(ep, m.label, 'false'),
          ttfbHist.cell(ep, m.label, 'true'),
        ];
        m.latency.set(ep, h);
      }
      requestDuration.observe(h[si], lat / 1000);
      if (rec.costUsd !== undefined) {
        let key = rec.key ?? 'none';
        if (!spendKeys.has(key)) {
          if (spendKeys.size < 100) spendKeys.add(key);
          else key = '(other)';
        }
        spendTotal.cell(ep, m.label, key).value += rec.costUsd;
      }
      if (rec.ttfbMs !== undefined) ttfbHist.observe(h[2 + si], rec.ttfbMs / 1000);
      m.requestsN++;
      m.latencySumMs += lat;
      totals.requests++;
      totals.latencySumMs += lat;
      totals.byStatus.set(status, (totals.byStatus.get(status) ?? 0) + 1);
      if (failed) {
        m.errors++;
        totals.errors++;
      }
      if (rec.stream) {
        m.streams++;
        totals.streams++;
      }
      ring[ringN++ & (ring.length - 1)] = lat;
      if (ringN >= 2 * ring.length) ringN -= ring.length;
      if (requestLog) requestLog.write(rec, now());
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const off of offs) off();
      offs.length = 0;
      offDone?.();
      offDone = undefined;
      pending.clear();
      await Promise.all([requestLog?.close(), flush()]);
    },
  };
  return obs;
}

let sharedRegistry: Registry | undefined;

/**
 * Process metrics (CPU, memory, event loop lag, GC) describe the process, not one server: one collector per process,
 * shared by every instance (a collector cannot be stopped, so one per instance would leak).
 */
function sharedProcessRegistry(
  R: typeof import('prom-client').Registry,
  collect: typeof import('prom-client').collectDefaultMetrics,
): Registry {
  if (!sharedRegistry) {
    sharedRegistry = new R();
    collect({ register: sharedRegistry, prefix: 'lb_' });
  }
  return sharedRegistry;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return `an object (${Object.prototype.toString.call(v)})`;
  return `${typeof v} ${String(v)}`;
}
