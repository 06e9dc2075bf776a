import type { Router, RouterEvents } from '@lb/core';
import type { ClientRequestRecord, HealthBody, SharedStoreView } from '../observability/types.js';

/** What the dashboard hub reads, all public views of the server (never router internals). */
export interface DashboardSources {
  router: Router;
  /** The `/health` body: endpoint states, breaker states, in flight, why unavailable, when it recovers. */
  health(): HealthBody;
  /** Remaining budgets per endpoint (`/stats` → `endpoints[id].rateLimit`) and tokens per endpoint and model. */
  stats(): {
    endpoints: Record<string, { rateLimit: Record<string, number> | undefined; tokens: { total: number } }>;
    models: Record<string, { tokens: { total: number } }>;
  };
  /** The shared store's state, when Redis is configured. */
  sharedStore?: () => SharedStoreView;
  /**
   * Installs (a function) or removes (`undefined`) the hub's tap on finished requests. The hub installs it only while
   * a dashboard is connected: with nobody watching, a request costs the dashboard nothing.
   */
  tap(fn: ((rec: ClientRequestRecord) => void) | undefined): void;
}

/** Options of {@link DashboardHub}. */
export interface DashboardHubOptions {
  /** Events are batched and sent once per frame, ms. Default 250. */
  frameMs?: number;
  /** A frame is sent at least this often even when nothing happened (countdowns, budgets refill), ms. Default 2000. */
  idleFrameMs?: number;
  /** Requests kept for the "last requests" table. Default 50. */
  recentRequests?: number;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
}

/** One row of the endpoint table. */
export interface EndpointRow {
  id: string;
  name: string;
  provider: string;
  /** Router state: healthy, cooling, unhealthy, disabled. */
  state: string;
  /** What the table shows: `healthy`, `cooling`, `open`, `half-open`, `unhealthy`, `disabled`, `probation`, `limited`. */
  display: string;
  available: boolean;
  reason: string | undefined;
  breaker: string | undefined;
  recoversAt: string | undefined;
  inFlight: number;
  /** Attempts per second over the window. */
  rps: number;
  /** Failed attempts / attempts over the window, 0..1. */
  errorRate: number;
  /** Failed attempts by kind over the window. */
  errors: Record<string, number>;
  /** Attempt latency to response headers, ms, over the last 256 attempts seen while watched. */
  p50: number | undefined;
  p99: number | undefined;
  /** Time to first byte to the client, ms, over the last 256 requests seen while watched. */
  ttfbP50: number | undefined;
  ttfbP99: number | undefined;
  /** Budgets left (rps, rpm, tpm…). */
  budget: Record<string, number> | undefined;
  tags: readonly string[];
  models: readonly string[];
  tokens: number;
}

/** An entry of the live strip. */
export interface StripEvent {
  /** Epoch ms. */
  t: number;
  kind: 'failover' | 'exhausted' | 'state' | 'breaker' | 'guard' | 'override' | 'reload';
  endpointId: string | undefined;
  text: string;
}

/** A request in the "last requests" table (never a key: `client` is the masked key or the IP). */
export interface RecentRequest {
  t: number;
  id: string;
  client: string | undefined;
  model: string | undefined;
  endpoint: string | undefined;
  status: number;
  attempts: number;
  latencyMs: number;
  ttfbMs: number | undefined;
  tokens: number | undefined;
  stream: boolean;
}

/** What one SSE `data:` line carries. `full`: replace everything (first frame of a connection). */
export interface DashboardFrame {
  full: boolean;
  time: number;
  status: string;
  endpoints: EndpointRow[];
  events: StripEvent[];
  requests: RecentRequest[];
  tokens: {
    byKey: Record<string, number>;
    byModel: Record<string, number>;
    byEndpoint: Record<string, number>;
  };
  store: SharedStoreView | undefined;
}

/** A connected dashboard: anything that takes SSE text (a `ServerResponse`). */
export interface FrameSink {
  write(chunk: string): boolean;
}

const WINDOW = 20; // frames in the rate window (5 s at 250 ms)
const LAT = 256;
const STRIP = 100;
const MAX_KEYS = 500;

class Ring {
  readonly v = new Float64Array(LAT);
  n = 0;
  push(x: number): void {
    this.v[this.n++ % LAT] = x;
  }
  pct(): [number | undefined, number | undefined] {
    const len = Math.min(this.n, LAT);
    if (len === 0) return [undefined, undefined];
    const s = this.v.slice(0, len).sort();
    const at = (q: number) => Math.round(s[Math.min(len - 1, Math.floor(q * len))] * 10) / 10;
    return [at(0.5), at(0.99)];
  }
}

interface EpWin {
  attempts: number;
  failures: number;
  kinds: Record<string, number>;
  /** Cumulative counts at the end of each of the last frames (oldest first). */
  past: { attempts: number; failures: number; kinds: Record<string, number> }[];
  latency: Ring;
  ttfb: Ring;
}

/**
 * The dashboard's one subscriber: while at least one dashboard is connected it listens to the router's bus and taps
 * finished requests, and sends every connected dashboard the same frame once per `frameMs`. With none connected it
 * holds no subscription, no timer and no tap.
 */
export class DashboardHub {
  readonly #src: DashboardSources;
  readonly #frameMs: number;
  readonly #idleMs: number;
  readonly #recentMax: number;
  readonly #now: () => number;
  readonly #sinks = new Set<FrameSink>();
  readonly #eps = new Map<string, EpWin>();
  readonly #strip: StripEvent[] = [];
  readonly #recent: RecentRequest[] = [];
  readonly #byKey: Record<string, number> = {};
  #keys = 0;
  #newEvents: StripEvent[] = [];
  #newRequests: RecentRequest[] = [];
  #dirty = false;
  #lastSent = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #offs: (() => void)[] = [];
  #lastFailover = new Map<string, string>();

  constructor(src: DashboardSources, opts: DashboardHubOptions = {}) {
    this.#src = src;
    this.#frameMs = opts.frameMs ?? 250;
    this.#idleMs = opts.idleFrameMs ?? 2000;
    this.#recentMax = opts.recentRequests ?? 50;
    this.#now = opts.now ?? Date.now;
  }

  /** Dashboards connected now. */
  get watchers(): number {
    return this.#sinks.size;
  }

  /** Connects a dashboard: it gets a full frame now and every batched frame after. Returns the disconnect. */
  add(sink: FrameSink): () => void {
    if (this.#sinks.size === 0) this.#start();
    this.#sinks.add(sink);
    sink.write(`data: ${JSON.stringify(this.#frame(true))}\n\n`);
    return () => {
      if (!this.#sinks.delete(sink)) return;
      if (this.#sinks.size === 0) this.#stop();
    };
  }

  /** Disconnects every dashboard and drops the subscriptions. */
  close(): void {
    this.#sinks.clear();
    this.#stop();
  }

  #start(): void {
    const r = this.#src.router;
    const on = <E extends keyof RouterEvents>(e: E, fn: (p: RouterEvents[E]) => void) =>
      this.#offs.push(r.on(e, fn));
    on('attempt:start', (e) => {
      this.#ep(e.endpointId).attempts++;
      const from = this.#lastFailover.get(e.requestId);
      if (from !== undefined) {
        this.#lastFailover.delete(e.requestId);
        this.#event(
          'failover',
          from,
          `${from} → ${e.endpointId} (attempt ${e.attempt}, ${e.model ?? 'any model'})`,
        );
      }
      this.#dirty = true;
    });
    on('attempt:success', (e) => {
      this.#ep(e.endpointId).latency.push(e.latencyMs);
      this.#lastFailover.delete(e.requestId);
    });
    on('attempt:failure', (e) => {
      const w = this.#ep(e.endpointId);
      w.failures++;
      w.kinds[e.kind] = (w.kinds[e.kind] ?? 0) + 1;
      if (e.failover) this.#lastFailover.set(e.requestId, e.endpointId);
      else this.#lastFailover.delete(e.requestId);
      this.#dirty = true;
    });
    on('request:exhausted', (e) => {
      this.#lastFailover.delete(e.requestId);
      this.#event(
        'exhausted',
        undefined,
        `request ${e.requestId} failed after ${e.attempts.length} attempt(s)`,
      );
    });
    on('endpoint:state', (e) =>
      this.#event('state', e.endpointId, `${e.endpointId}: ${e.from} → ${e.to} (${e.reason})`),
    );
    on('endpoint:override', (e) =>
      this.#event(
        'override',
        e.endpointId,
        `${e.endpointId} ${e.healthy ? 'enabled' : 'disabled'} (${e.reason})`,
      ),
    );
    on('guard:state', (e) =>
      this.#event(
        e.kind === 'circuit' ? 'breaker' : 'guard',
        e.endpointId,
        `${e.endpointId}: ${e.guard} ${e.from} → ${e.to} (${e.reason})`,
      ),
    );
    on('config:reloaded', (e) =>
      this.#event(
        'reload',
        undefined,
        `config reloaded: ${e.added.length} added, ${e.removed.length} removed, ${e.changed.length} changed`,
      ),
    );
    this.#src.tap((rec) => this.#record(rec));
    this.#timer = setInterval(() => this.#tick(), this.#frameMs);
    this.#timer.unref?.();
  }

  #stop(): void {
    for (const off of this.#offs) off();
    this.#offs = [];
    this.#src.tap(undefined);
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#lastFailover.clear();
    for (const w of this.#eps.values()) w.past = [];
    this.#newEvents = [];
    this.#newRequests = [];
  }

  #ep(id: string): EpWin {
    let w = this.#eps.get(id);
    if (w === undefined) {
      w = { attempts: 0, failures: 0, kinds: {}, past: [], latency: new Ring(), ttfb: new Ring() };
      this.#eps.set(id, w);
    }
    return w;
  }

  #event(kind: StripEvent['kind'], endpointId: string | undefined, text: string): void {
    const ev: StripEvent = { t: this.#now(), kind, endpointId, text };
    this.#strip.push(ev);
    if (this.#strip.length > STRIP) this.#strip.shift();
    this.#newEvents.push(ev);
    this.#dirty = true;
  }

  #record(rec: ClientRequestRecord): void {
    const tokens = rec.usage?.total_tokens;
    const r: RecentRequest = {
      t: this.#now(),
      id: rec.requestId,
      client: rec.client,
      model: rec.model,
      endpoint: rec.endpointId,
      status: rec.status,
      attempts: rec.attempts,
      latencyMs: Math.round(rec.latencyMs * 10) / 10,
      ttfbMs: rec.ttfbMs === undefined ? undefined : Math.round(rec.ttfbMs * 10) / 10,
      tokens,
      stream: rec.stream,
    };
    this.#recent.push(r);
    if (this.#recent.length > this.#recentMax) this.#recent.shift();
    this.#newRequests.push(r);
    if (this.#newRequests.length > this.#recentMax) this.#newRequests.shift();
    if (rec.endpointId !== undefined && rec.ttfbMs !== undefined)
      this.#ep(rec.endpointId).ttfb.push(rec.ttfbMs);
    if (tokens) {
      let k = rec.client ?? 'anonymous';
      // Clients are addresses when no gateway keys are set: a bounded table, the rest together.
      if (this.#byKey[k] === undefined && ++this.#keys > MAX_KEYS) k = 'other';
      this.#byKey[k] = (this.#byKey[k] ?? 0) + tokens;
    }
    this.#dirty = true;
  }

  #tick(): void {
    for (const w of this.#eps.values()) {
      w.past.push({ attempts: w.attempts, failures: w.failures, kinds: { ...w.kinds } });
      if (w.past.length > WINDOW) w.past.shift();
    }
    const now = this.#now();
    if (!this.#dirty && now - this.#lastSent < this.#idleMs) return;
    const text = `data: ${JSON.stringify(this.#frame(false))}\n\n`;
    for (const s of this.#sinks) s.write(text);
  }

  #frame(full: boolean): DashboardFrame {
    const now = this.#now();
    const health = this.#src.health();
    const stats = this.#src.stats();
    const endpoints: EndpointRow[] = [];
    const byEndpoint: Record<string, number> = {};
    for (const v of health.endpoints) {
      const w = this.#ep(v.id);
      const first = w.past[0];
      const secs = Math.max(1, w.past.length) * (this.#frameMs / 1000);
      const att = w.attempts - (first?.attempts ?? w.attempts);
      const fail = w.failures - (first?.failures ?? w.failures);
      const errors: Record<string, number> = {};
      for (const k in w.kinds) {
        const d = w.kinds[k] - (first ? (first.kinds[k] ?? 0) : w.kinds[k]);
        if (d > 0) errors[k] = d;
      }
      const [p50, p99] = w.latency.pct();
      const [t50, t99] = w.ttfb.pct();
      const ep = this.#src.router.endpoints.find((e) => e.id === v.id);
      const s = stats.endpoints[v.id];
      const tokens = s?.tokens.total ?? 0;
      if (tokens) byEndpoint[v.id] = tokens;
      endpoints.push({
        id: v.id,
        name: v.name,
        provider: v.provider,
        state: v.state,
        display: displayOf(v.state, v.breaker, v.available, v.streamProbation),
        available: v.available,
        reason: v.reason,
        breaker: v.breaker,
        recoversAt: v.recoversAt,
        inFlight: v.inFlight,
        rps: Math.round((att / secs) * 10) / 10,
        errorRate: att > 0 ? Math.round((fail / att) * 1000) / 1000 : 0,
        errors,
        p50,
        p99,
        ttfbP50: t50,
        ttfbP99: t99,
        budget: s?.rateLimit,
        tags: ep?.tags ?? [],
        models: v.models,
        tokens,
      });
    }
    // Endpoints a reload removed take their windows with them.
    if (this.#eps.size > health.endpoints.length)
      for (const id of this.#eps.keys()) if (!health.endpoints.some((v) => v.id === id)) this.#eps.delete(id);
    const byModel: Record<string, number> = {};
    for (const m in stats.models) if (stats.models[m].tokens.total) byModel[m] = stats.models[m].tokens.total;
    const frame: DashboardFrame = {
      full,
      time: now,
      status: health.status,
      endpoints,
      events: full ? this.#strip.slice() : this.#newEvents,
      requests: full ? this.#recent.slice() : this.#newRequests,
      tokens: { byKey: { ...this.#byKey }, byModel, byEndpoint },
      store: this.#src.sharedStore?.(),
    };
    if (!full) {
      this.#newEvents = [];
      this.#newRequests = [];
      this.#dirty = false;
      this.#lastSent = now;
    }
    return frame;
  }
}

/** The state a row shows: a breaker's open/half-open outranks the router's own state, disabled outranks all. */
export function displayOf(
  state: string,
  breaker: string | undefined,
  available: boolean,
  probation: boolean,
): string {
  if (state === 'disabled') return 'disabled';
  if (breaker === 'open' || breaker === 'isolated') return 'open';
  if (breaker === 'half-open') return 'half-open';
  if (state !== 'healthy') return state;
  if (probation) return 'probation';
  return available ? 'healthy' : 'limited';
}
