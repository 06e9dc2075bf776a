// The Prometheus metrics: every family the server exports, the per-endpoint and per-model cells the hot path
// counts into, bounded model labels, the gauges read from snapshots at each scrape, and the registry (loaded at
// the first scrape).
import type { BreakerSnapshot, HealthSnapshot } from '@lb/breaker';
import type { Router, RouterSnapshot } from '@lb/core';
import type { RateLimitEndpointSnapshot, StoreHealth } from '@lb/ratelimit';
import type { Registry } from 'prom-client';
import { type Cell, CounterFamily, type HistCell, HistogramFamily, SnapshotGauge } from './families.js';
import { breakerValue, remainingOf } from './sources.js';
import { storeMetrics } from './store.js';
import type { ClientRequestRecord } from './types.js';

/** prom-client's `Registry.PROMETHEUS_CONTENT_TYPE` (the text exposition format 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
/** Client-level buckets (seconds): LLM requests run from milliseconds to minutes. */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];
/** Time to first byte and upstream latency (to response headers). */
const FAST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Distinct model labels kept; beyond it (or for names no endpoint serves) the label is `other`. */
const MAX_MODEL_LABELS = 200;
const STATES = ['healthy', 'cooling', 'unhealthy', 'disabled'] as const;

/** One endpoint's cells, and its token totals for `/stats`. */
export interface EpCells {
  readonly attempts: Map<string, Cell>;
  readonly latency: Map<string, HistCell>;
  readonly tokens: Map<string, [Cell, Cell, Cell]>;
  prompt: number;
  completion: number;
  total: number;
}

/** One model label's cells, and its totals for `/stats`. */
export interface ModelCells {
  readonly label: string;
  /** By status: [non-stream, stream]. */
  readonly requests: Map<number, [Cell, Cell]>;
  /** By serving endpoint id (`none` when none answered): [duration, duration stream, ttfb, ttfb stream]. */
  readonly latency: Map<string, [HistCell, HistCell, HistCell, HistCell]>;
  /** `lb_spend_usd_total` by serving endpoint id, then key label. */
  readonly spend: Map<string, Map<string, Cell>>;
  requestsN: number;
  errors: number;
  streams: number;
  latencySumMs: number;
  prompt: number;
  completion: number;
  total: number;
}

/** The snapshots the gauges are read from at a scrape. */
export interface GaugeSources {
  breakers: Record<string, BreakerSnapshot> | undefined;
  limits: Record<string, RateLimitEndpointSnapshot> | undefined;
  probes: Record<string, HealthSnapshot> | undefined;
  heldBytes: (() => number) | undefined;
}

/** The server's Prometheus metrics over one router. */
export class Metrics {
  readonly requestsTotal = new CounterFamily(
    'lb_requests_total',
    'Client requests by model, status and stream.',
    ['model', 'status', 'stream'],
  );
  readonly requestDuration = new HistogramFamily(
    'lb_request_duration_seconds',
    'Client request duration, first byte in to last byte out.',
    ['endpoint', 'model', 'stream'],
    REQUEST_BUCKETS,
  );
  readonly ttfbHist = new HistogramFamily(
    'lb_time_to_first_byte_seconds',
    'Time from the client request to the first byte sent back.',
    ['endpoint', 'model', 'stream'],
    FAST_BUCKETS,
  );
  readonly attemptsTotal = new CounterFamily(
    'lb_upstream_attempts_total',
    'Upstream attempts by endpoint and outcome (success, client, server, network, timeout, rate-limit, auth, aborted).',
    ['endpoint', 'outcome'],
  );
  readonly upstreamLatency = new HistogramFamily(
    'lb_upstream_latency_seconds',
    'Upstream attempt latency to response headers, by endpoint and model.',
    ['endpoint', 'model'],
    FAST_BUCKETS,
  );
  readonly failovers = new CounterFamily(
    'lb_failovers_total',
    'Failovers to another attempt, by the failing endpoint and why.',
    ['from_endpoint', 'reason'],
  );
  readonly errorsTotal = new CounterFamily(
    'lb_errors_total',
    'Upstream errors by class (server, network, timeout, rate-limit, auth, stream); client errors are not counted.',
    ['kind'],
  );
  readonly exhaustedTotal = new CounterFamily(
    'lb_requests_exhausted_total',
    'Requests that failed on every endpoint tried.',
    ['model'],
  );
  readonly fallbacksTotal = new CounterFamily(
    'lb_fallbacks_total',
    'Requests moved on to the next model of a fallback chain (from, to: configured models or "other"; cause).',
    ['from', 'to', 'cause'],
  );
  readonly tokensTotal = new CounterFamily(
    'lb_tokens_total',
    'Tokens reported by upstreams, by endpoint, model and type.',
    ['endpoint', 'model', 'type'],
  );
  readonly spendTotal = new CounterFamily(
    'lb_spend_usd_total',
    'What requests cost, USD (priced models only), by endpoint, model and named client key.',
    ['endpoint', 'model', 'key'],
  );
  readonly stateChanges = new CounterFamily(
    'lb_endpoint_state_changes_total',
    'Endpoint state transitions, by new state.',
    ['endpoint', 'state'],
  );
  readonly reloads = new CounterFamily('lb_config_reloads_total', 'Configuration reloads applied.', []);
  // Hedged requests and stream continuation (the `hedge` and `stream:continued` events).
  readonly hedgesStarted = new CounterFamily(
    'lb_hedges_started_total',
    'Hedges sent: second attempts of requests whose first had not answered within the hedge delay.',
    [],
  );
  readonly hedgesWon = new CounterFamily(
    'lb_hedges_won_total',
    'Hedges that answered before the first attempt.',
    [],
  );
  readonly continuations = new CounterFamily(
    'lb_stream_continuations_total',
    'Chat streams that broke after content and were continued on another endpoint.',
    [],
  );
  readonly endpointUp = new SnapshotGauge(
    'lb_endpoint_up',
    'Whether the endpoint can take a request now (1) or not (0).',
  );
  readonly endpointState = new SnapshotGauge('lb_endpoint_state', 'Endpoint state: 1 for the current state.');
  readonly endpointInFlight = new SnapshotGauge(
    'lb_endpoint_in_flight',
    'Attempts and streams running on the endpoint.',
  );
  readonly endpointEwma = new SnapshotGauge(
    'lb_endpoint_latency_ewma_seconds',
    'Moving average of attempt latency.',
  );
  readonly endpointSuccess = new SnapshotGauge(
    'lb_endpoint_success_ratio',
    'Successful attempts / all attempts (0..1).',
  );
  readonly probationGauge = new SnapshotGauge(
    'lb_endpoint_stream_probation',
    "1 while the endpoint's streams are held back whole (its last stream broke after the first byte).",
  );
  readonly heldGauge = new SnapshotGauge(
    'lb_stream_probation_held_bytes',
    'Bytes held in memory by streams held back whole for stream probation (bounded by STREAM_PROBATION_MAX_BYTES).',
  );
  readonly breakerGauge = new SnapshotGauge(
    'lb_breaker_state',
    'Circuit breaker state: 0 closed, 1 half-open, 2 open.',
  );
  readonly rateGauge = new SnapshotGauge(
    'lb_ratelimit_remaining',
    'Remaining rate-limit budget per endpoint and limit.',
  );
  readonly probeGauge = new SnapshotGauge(
    'lb_health_probe_seconds',
    'Response time of the last health probe.',
  );

  readonly reloadCell = this.reloads.cell();
  readonly hedgeStartedCell = this.hedgesStarted.cell();
  readonly hedgeWonCell = this.hedgesWon.cell();
  readonly continuedCell = this.continuations.cell();

  /** Per endpoint id. */
  readonly eps = new Map<string, EpCells>();
  /** Per model label. */
  readonly models = new Map<string, ModelCells>();
  /** `lb_errors_total` by kind. */
  readonly errorCells = new Map<string, Cell>();

  // prom-client (~2 MB of RSS, and its process collectors) loads at the first scrape: the hot path only touches the
  // families' own cells, and an idle proxy that is never scraped does not need it.
  readonly #families: object[];
  readonly #store: ReturnType<typeof storeMetrics> | undefined;
  #registries: Promise<{ own: Registry; process: Registry | undefined }> | undefined;
  /** The models the config names: only they become labels. */
  #known: Set<string>;
  readonly #modelLabels = new Map<string, string>();
  // Bounded key labels: named keys only, at most 100, then `(other)`; unnamed keys are `none`.
  readonly #spendKeys = new Set<string>();

  constructor(
    private readonly router: Router,
    private readonly version: string | undefined,
    private readonly processMetrics: boolean,
    store: StoreHealth | undefined,
  ) {
    this.#known = new Set(router.models());
    this.#families = [
      this.requestsTotal,
      this.requestDuration,
      this.ttfbHist,
      this.attemptsTotal,
      this.upstreamLatency,
      this.failovers,
      this.errorsTotal,
      this.exhaustedTotal,
      this.fallbacksTotal,
      this.tokensTotal,
      this.spendTotal,
      this.stateChanges,
      this.reloads,
      this.hedgesStarted,
      this.hedgesWon,
      this.continuations,
      this.endpointUp,
      this.endpointState,
      this.endpointInFlight,
      this.endpointEwma,
      this.endpointSuccess,
      this.probationGauge,
      this.heldGauge,
      this.breakerGauge,
      this.rateGauge,
      this.probeGauge,
    ];
    this.#store = store ? storeMetrics(store) : undefined;
    if (this.#store) this.#families.push(...this.#store.families);
  }

  epCells(id: string): EpCells {
    let c = this.eps.get(id);
    if (!c) {
      c = { attempts: new Map(), latency: new Map(), tokens: new Map(), prompt: 0, completion: 0, total: 0 };
      this.eps.set(id, c);
    }
    return c;
  }

  /**
   * Only models the config names become labels (up to `MAX_MODEL_LABELS`); any other name — even one an endpoint
   * serving every model answered 2xx for — is `other`, so clients cannot grow the scrape with made-up names.
   */
  modelLabel(model: string | undefined): string {
    if (model === undefined) return 'none';
    const l = this.#modelLabels.get(model);
    if (l !== undefined) return l;
    if (this.#modelLabels.size >= MAX_MODEL_LABELS || !this.#known.has(model)) return 'other';
    this.#modelLabels.set(model, model);
    return model;
  }

  modelCells(label: string): ModelCells {
    let c = this.models.get(label);
    if (!c) {
      c = {
        label,
        requests: new Map(),
        latency: new Map(),
        spend: new Map(),
        requestsN: 0,
        errors: 0,
        streams: 0,
        latencySumMs: 0,
        prompt: 0,
        completion: 0,
        total: 0,
      };
      this.models.set(label, c);
    }
    return c;
  }

  countError(kind: string): void {
    let c = this.errorCells.get(kind);
    if (!c) {
      c = this.errorsTotal.cell(kind);
      this.errorCells.set(kind, c);
    }
    c.value++;
  }

  attemptCell(c: EpCells, endpointId: string, outcome: string): Cell {
    let cell = c.attempts.get(outcome);
    if (!cell) {
      cell = this.attemptsTotal.cell(endpointId, outcome);
      c.attempts.set(outcome, cell);
    }
    return cell;
  }

  latencyCell(c: EpCells, endpointId: string, model: string | undefined): HistCell {
    const m = this.modelLabel(model);
    let cell = c.latency.get(m);
    if (!cell) {
      cell = this.upstreamLatency.cell(endpointId, m);
      c.latency.set(m, cell);
    }
    return cell;
  }

  /** A reload: the new config's models become labels; removed endpoints' series go. */
  reloaded(removed: readonly string[]): void {
    this.reloadCell.value++;
    this.#known = new Set(this.router.models());
    for (const id of removed) {
      this.eps.delete(id);
      this.attemptsTotal.drop('endpoint', id);
      this.upstreamLatency.drop('endpoint', id);
      this.tokensTotal.drop('endpoint', id);
      this.stateChanges.drop('endpoint', id);
      this.failovers.drop('from_endpoint', id);
      this.requestDuration.drop('endpoint', id);
      this.ttfbHist.drop('endpoint', id);
      for (const m of this.models.values()) {
        m.latency.delete(id);
        m.spend.delete(id);
      }
    }
  }

  /** One finished client request: its counters and histograms, and its model's totals. */
  recordRequest(rec: ClientRequestRecord): void {
    const status = rec.status;
    const failed = status >= 400;
    const m = this.modelCells(this.modelLabel(rec.model));
    const si = rec.stream ? 1 : 0;
    let pair = m.requests.get(status);
    if (!pair) {
      const s = String(status);
      pair = [this.requestsTotal.cell(m.label, s, 'false'), this.requestsTotal.cell(m.label, s, 'true')];
      m.requests.set(status, pair);
    }
    pair[si].value++;
    const lat = rec.latencyMs;
    // Only ids of configured endpoints become labels.
    const ep =
      rec.endpointId !== undefined && this.router.getEndpoint(rec.endpointId) ? rec.endpointId : 'none';
    let h = m.latency.get(ep);
    if (!h) {
      h = [
        this.requestDuration.cell(ep, m.label, 'false'),
        this.requestDuration.cell(ep, m.label, 'true'),
        this.ttfbHist.cell(ep, m.label, 'false'),
        this.ttfbHist.cell(ep, m.label, 'true'),
      ];
      m.latency.set(ep, h);
    }
    this.requestDuration.observe(h[si], lat / 1000);
    if (rec.costUsd !== undefined) {
      let key = rec.key ?? 'none';
      if (!this.#spendKeys.has(key)) {
        if (this.#spendKeys.size < 100) this.#spendKeys.add(key);
        else key = '(other)';
      }
      let byKey = m.spend.get(ep);
      if (byKey === undefined) {
        byKey = new Map();
        m.spend.set(ep, byKey);
      }
      let cell = byKey.get(key);
      if (cell === undefined) {
        cell = this.spendTotal.cell(ep, m.label, key);
        byKey.set(key, cell);
      }
      cell.value += rec.costUsd;
    }
    if (rec.ttfbMs !== undefined) this.ttfbHist.observe(h[2 + si], rec.ttfbMs / 1000);
    m.requestsN++;
    m.latencySumMs += lat;
    if (failed) m.errors++;
    if (rec.stream) m.streams++;
  }

  /** The exposition text: gauges read from the snapshots now, then every family (and the process's metrics). */
  async text(snap: RouterSnapshot, src: GaugeSources): Promise<string> {
    const up: typeof this.endpointUp.values = [];
    const st: typeof this.endpointUp.values = [];
    const inflight: typeof this.endpointUp.values = [];
    const ewma: typeof this.endpointUp.values = [];
    const success: typeof this.endpointUp.values = [];
    const probation: typeof this.endpointUp.values = [];
    const br: typeof this.endpointUp.values = [];
    const rate: typeof this.endpointUp.values = [];
    const probe: typeof this.endpointUp.values = [];
    for (const ep of snap.endpoints) {
      const labels = { endpoint: ep.id };
      up.push({ labels, value: ep.available ? 1 : 0 });
      for (const s of STATES)
        st.push({ labels: { endpoint: ep.id, state: s }, value: ep.status === s ? 1 : 0 });
      inflight.push({ labels, value: ep.stats.inFlight });
      if (ep.stats.latencySamples > 0) ewma.push({ labels, value: ep.stats.ewmaLatencyMs / 1000 });
      success.push({ labels, value: ep.stats.successRate });
      probation.push({ labels, value: ep.streamProbation ? 1 : 0 });
      const b = src.breakers?.[ep.id]?.state;
      if (b) br.push({ labels, value: breakerValue(b) });
      const r = remainingOf(src.limits?.[ep.id]);
      if (r) for (const k in r) rate.push({ labels: { endpoint: ep.id, limit: k }, value: r[k] });
      const p = src.probes?.[ep.id]?.responseTime;
      if (p !== undefined) probe.push({ labels, value: p / 1000 });
    }
    this.endpointUp.values = up;
    this.endpointState.values = st;
    this.endpointInFlight.values = inflight;
    this.endpointEwma.values = ewma;
    this.endpointSuccess.values = success;
    this.probationGauge.values = probation;
    if (src.heldBytes) this.heldGauge.values = [{ labels: {}, value: src.heldBytes() }];
    this.breakerGauge.values = br;
    this.rateGauge.values = rate;
    this.probeGauge.values = probe;
    this.#store?.refresh();
    const reg = await this.#loadRegistries();
    const own = await reg.own.metrics();
    return reg.process ? own + (await reg.process.metrics()) : own;
  }

  #loadRegistries(): Promise<{ own: Registry; process: Registry | undefined }> {
    return (this.#registries ??= import('prom-client').then(({ collectDefaultMetrics, Gauge, Registry }) => {
      const own = new Registry();
      for (const m of this.#families) own.registerMetric(m as never);
      new Gauge({
        name: 'lb_build_info',
        help: 'lb-server version.',
        labelNames: ['version'],
        registers: [own],
      }).set({ version: this.version ?? 'unknown' }, 1);
      const process = this.processMetrics
        ? sharedProcessRegistry(Registry, collectDefaultMetrics)
        : undefined;
      return { own, process };
    }));
  }
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
