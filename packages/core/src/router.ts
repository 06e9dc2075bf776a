import { EventEmitter } from 'eventemitter3';
import { classify, isAbortError, type OutcomeInput, type Verdict } from './classify.js';
import { Endpoint, type EndpointConfig } from './endpoint.js';
import {
  type AttemptCause,
  AttemptTimeoutError,
  ConfigError,
  DeadlineExceededError,
  LbError,
  NoHealthyEndpointError,
} from './errors.js';
import type { PublishedEventName, RouterEventName, RouterEvents, Usage } from './events.js';
import type { Guard, Veto } from './guard.js';
import type { HeadersLike } from './headers.js';
import { redact } from './mask.js';
import { attachOutlierEjection, type OutlierEjectionOptions, validateOutlierEjection } from './outlier.js';
import { fastRandom } from './random.js';
import type { RouteRequest } from './request.js';
import { type EndpointHealth, type EndpointStats, type EndpointStatus, HEALTHY, newStats } from './state.js';
import { resolveStrategy } from './strategies/builtin.js';
import type { Candidate, PickContext, Strategy, StrategyFactory, StrategyOptions } from './strategy.js';

/**
 * A deadline this close counts as passed: an attempt timer bounded by the deadline may fire a millisecond or two
 * before the wall clock reads it (timers run on the loop's cached monotonic time), and no attempt fits in so little.
 */
const DEADLINE_SLACK_MS = 5;

/** One backend of a model group: an endpoint by id, with its own upstream model name, weight, priority and tags. */
export interface ModelBackendConfig {
  endpoint: string;
  model?: string;
  weight?: number;
  priority?: number;
  tags?: readonly string[];
}

/** An exposed model name served by a chosen set of backends with a strategy of its own. */
export interface ModelGroupConfig {
  strategy?: string | Strategy | StrategyFactory;
  backends: readonly ModelBackendConfig[];
}

/** Exponential backoff with jitter, used when a request must try an endpoint again. */
export interface BackoffOptions {
  /** First delay, ms. Default 250. */
  initialMs?: number;
  /** Largest delay, ms. Default 8000. */
  maxMs?: number;
  /** Growth per retry. Default 2. */
  multiplier?: number;
  /** Fraction of the delay that is random (0 = none, 1 = full jitter). Default 0.5. */
  jitter?: number;
}

/**
 * Everything a router needs, as a plain object (what `@lb/config-env` produces).
 *
 * @example
 * const router = createRouter({
 *   endpoints: [
 *     { id: 'primary', url: 'https://api.openai.com/v1', apiKey: process.env.OPENAI_API_KEY },
 *     { id: 'backup', url: 'https://my-proxy.example/v1', apiKey: process.env.PROXY_KEY, priority: 2 },
 *   ],
 * });
 */
export interface RouterConfig {
  endpoints: readonly EndpointConfig[];
  /** Strategy name, instance or factory. Default `priority`. Env: `LB_STRATEGY`. */
  strategy?: string | Strategy | StrategyFactory;
  /** Options for built-in strategies. */
  strategyOptions?: Partial<Omit<StrategyOptions, 'random'>>;
  /** Model groups: exposed model name → backends and strategy. */
  models?: Readonly<Record<string, ModelGroupConfig>>;
  /** Fail over to other endpoints at all. Default true. Env: `OPENAI_FALLBACK_ENABLED`. */
  failover?: boolean;
  /** Attempts after the first. Default 3. Env: `OPENAI_MAX_RETRIES`. */
  maxRetries?: number;
  /** Backoff before trying an endpoint this request already tried. Fresh endpoints are tried at once. */
  backoff?: BackoffOptions;
  /** Overall deadline of a request until an attempt succeeds, ms. Default 120000. */
  deadlineMs?: number;
  /** Per-attempt timeout (until the attempt function resolves), ms. Default: none (the transport's own timeouts). */
  timeoutMs?: number;
  /** Cooldown after a 429 without Retry-After, ms; doubles on consecutive 429s up to `maxCooldownMs`. Default 1000. */
  rateLimitCooldownMs?: number;
  /** Longest cooldown after repeated 429s without Retry-After, ms. Default 60000. */
  maxCooldownMs?: number;
  /** Longest Retry-After honoured, ms (longer ones are capped). Default 600000. */
  maxRetryAfterMs?: number;
  /** How long a key rejected with 401/403 stays out of rotation, ms, unless a probe or a hand brings it back. Default 300000. */
  keyRetireMs?: number;
  /** Longest a request waits for a cooling endpoint when none is available now, ms. Default 10000. */
  maxWaitMs?: number;
  /** Weight of the newest latency in the EWMA, 0..1. Default 0.3. */
  ewmaAlpha?: number;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** Randomness in [0, 1). Default {@link fastRandom} (allocation-free, seeded from `Math.random`). */
  random?: () => number;
  /**
   * Takes an endpoint out of rotation after consecutive failures, while no breaker is attached (see
   * {@link OutlierEjectionOptions}). Default: on (5 failures, 30 s, doubling up to 5 min). `false`: off.
   */
  outlierEjection?: boolean | OutlierEjectionOptions;
}

/** What an attempt function gets: the endpoint to call and how. */
export interface AttemptContext {
  readonly endpoint: Endpoint;
  /** The model name to send upstream (after mapping), when the request named one. */
  readonly upstreamModel: string | undefined;
  readonly model: string | undefined;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /**
   * The endpoint is on stream probation: its last stream broke after the first byte, and no stream started since
   * has ended cleanly. A caller that can should hold this attempt's stream back until it ends (within limits of its
   * own), so that a repeat break fails over to another endpoint instead of reaching its client; the first stream
   * that ends cleanly ends the probation. lb-server and the openai adapter do (`streamProbationHoldMs`).
   */
  readonly streamProbation: boolean;
  readonly requestId: string;
  /** Aborted when the caller aborts or this attempt times out. Pass it to your HTTP call. */
  readonly signal: AbortSignal | undefined;
  /** Epoch ms when the whole request's deadline passes. */
  readonly deadline: number;
  /**
   * Keeps the attempt counted as in flight after the attempt function resolves (a stream still flowing). Call the
   * returned function exactly once when the stream ends, with the error if it broke.
   */
  hold(): (error?: unknown) => void;
  /** Reports token usage when it becomes known (emits `attempt:usage`). */
  reportUsage(usage: Usage, costUsd?: number): void;
}

/** Options of one `execute` call. */
export interface ExecuteOptions<T> {
  /** Reads status and headers from a resolved value. Default: `value.status` / `value.headers` when present. */
  inspect?: (value: T) => { status?: number; headers?: HeadersLike | null } | undefined;
  /** Releases a value that will not be returned (a failed response's body) before the next attempt. */
  discard?: (value: T) => void | Promise<void>;
}

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

interface Runtime {
  endpoint: Endpoint;
  index: number;
  stats: EndpointStats;
  health: EndpointHealth;
  rateLimitStreak: number;
  /**
   * `performance.now()` when a stream of this endpoint last broke after its first byte; 0 once a stream started
   * after that has ended cleanly (or never broke). Non-zero: the endpoint is on stream probation.
   */
  streamBrokeAt: number;
}

interface CandidateImpl extends Candidate {
  readonly rt: Runtime;
  readonly tags: readonly string[];
}

interface Route {
  readonly model: string | undefined;
  readonly candidates: readonly CandidateImpl[];
  readonly strategy: Strategy;
  /** Candidates that are enabled, healthy and weighted, before guards: rebuilt only when health changes. */
  eligible: readonly CandidateImpl[];
  /** The router's health version `eligible` was built at (-1: never). */
  eligibleVersion: number;
  /** Epoch ms when a cooling endpoint of this route comes back (Infinity: none). */
  validUntil: number;
}

interface Pool {
  readonly runtimes: readonly Runtime[];
  readonly byId: ReadonlyMap<string, Runtime>;
  readonly groups: ReadonlyMap<string, ModelGroupConfig>;
  readonly routes: Map<string, Route>;
  defaultRoute: Route | undefined;
}

const MAX_ROUTES = 4096;
const DEFAULTS = {
  maxRetries: 3,
  deadlineMs: 120_000,
  rateLimitCooldownMs: 1000,
  maxCooldownMs: 60_000,
  maxRetryAfterMs: 600_000,
  keyRetireMs: 300_000,
  maxWaitMs: 10_000,
  ewmaAlpha: 0.3,
};

let requestCounter = 0;
/**
 * Releases a failed value that will not be returned (returns `undefined`, the new `pending`). Not awaited: the choice
 * of the next endpoint and its claim (in-flight count, guard tokens) must happen in the same tick.
 */
function release<T>(pending: { value: T } | undefined, options: ExecuteOptions<T> | undefined): undefined {
  if (pending && options?.discard) {
    try {
      const r = options.discard(pending.value);
      if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(() => {});
    } catch {
      // best effort
    }
  }
  return undefined;
}

/** The reason `@lb/exchange`'s `Hedger` cancels the attempt that lost the race with: not a failure. */
export const HEDGE_CANCELLED = 'ERR_LB_HEDGE_CANCELLED';

function isHedgeCancel(signal: AbortSignal | undefined): boolean {
  return (signal?.reason as { code?: unknown } | undefined)?.code === HEDGE_CANCELLED;
}

const perf: { now(): number } = typeof performance !== 'undefined' ? performance : Date;

/**
 * Holds the endpoint pool and each endpoint's state; picks endpoints and runs attempts with failover.
 * Create it with {@link createRouter}.
 */
export class Router {
  #config!: RouterConfig;
  #pool!: Pool;
  #factory!: StrategyFactory;
  #strategyName = 'priority';
  readonly #bus = new EventEmitter<RouterEvents>();
  #guards: Guard[] = [];
  /** How many attached guards read the `now` a pick hands them (see `Guard.usesNow`). */
  #clockGuards = 0;
  /** Attached guards with a `rescue` (see `Guard.rescue`). */
  #rescuers = 0;
  readonly #scratch: CandidateImpl[] = [];
  readonly #ctx: {
    model: string | undefined;
    requestId: string | undefined;
    attempt: number;
    stable: boolean;
  } = {
    model: undefined,
    requestId: undefined,
    attempt: 1,
    stable: false,
  };
  #now: () => number = Date.now;
  /**
   * The last clock reading, kept as a shared heap number (the field starts as `undefined`, so V8 stores it tagged):
   * guards receive this same boxed value instead of a fresh 16-byte box per pick. Re-boxed once per millisecond.
   */
  #clock: unknown = undefined;
  /** Bumped on every health change: cached eligible lists are rebuilt when it moves. */
  #healthVersion = 0;
  readonly #ownRandom = fastRandom();
  #random: () => number = this.#ownRandom;
  #maxRetries = DEFAULTS.maxRetries;
  #failover = true;
  #deadlineMs = DEFAULTS.deadlineMs;
  #alpha = DEFAULTS.ewmaAlpha;

  constructor(config: RouterConfig) {
    this.#apply(config, true);
    attachOutlierEjection(this);
  }

  /** The current config (immutable: derive a new one and `reload` it). */
  get config(): RouterConfig {
    return this.#config;
  }

  /** Name of the default strategy. */
  get strategy(): string {
    return this.#strategyName;
  }

  /** Every endpoint of the current pool, in config order. */
  get endpoints(): readonly Endpoint[] {
    return this.#pool.runtimes.map((r) => r.endpoint);
  }

  /** One endpoint by id. */
  getEndpoint(id: string): Endpoint | undefined {
    return this.#pool.byId.get(id)?.endpoint;
  }

  /** An endpoint's live statistics (the object itself: read, do not write). */
  getStats(id: string): Readonly<EndpointStats> | undefined {
    return this.#pool.byId.get(id)?.stats;
  }

  /** An endpoint's health. */
  getHealth(id: string): EndpointHealth | undefined {
    const rt = this.#pool.byId.get(id);
    if (!rt) return undefined;
    this.#refresh(rt, this.#now());
    return rt.health;
  }

  /** Exposed model names: model groups plus every model an endpoint lists. */
  models(): string[] {
    const out = new Set<string>(this.#pool.groups.keys());
    for (const rt of this.#pool.runtimes) for (const m of rt.endpoint.models) out.add(m);
    return [...out];
  }

  // ---------------------------------------------------------------- events

  /**
   * Subscribes to a router event; returns the disposer.
   *
   * @example
   * const off = router.on('attempt:failure', (e) => console.log(e.endpointId, e.kind));
   * off();
   */
  on<E extends RouterEventName>(event: E, listener: (payload: RouterEvents[E]) => void): () => void {
    this.#bus.on(event, listener as never);
    return () => {
      this.#bus.off(event, listener as never);
    };
  }

  /** Subscribes for one event. Returns the disposer. */
  once<E extends RouterEventName>(event: E, listener: (payload: RouterEvents[E]) => void): () => void {
    this.#bus.once(event, listener as never);
    return () => {
      this.#bus.off(event, listener as never);
    };
  }

  /**
   * How many listeners an event has: lets a producer skip work nobody consumes (reading token usage from a body
   * when nothing listens for `attempt:usage`).
   */
  listenerCount(event: RouterEventName): number {
    return this.#bus.listenerCount(event);
  }

  #has(event: RouterEventName): boolean {
    return this.#bus.listenerCount(event) > 0;
  }

  #emit<E extends RouterEventName>(event: E, payload: RouterEvents[E]): void {
    try {
      this.#bus.emit(event, ...([payload] as never));
    } catch {
      // A throwing subscriber must not break routing.
    }
  }

  // ---------------------------------------------------------------- guards

  /** Attaches a guard (breaker, rate limiter, provider capabilities…). Returns the disposer. */
  addGuard(guard: Guard): () => void {
    if (!guard || typeof guard.admit !== 'function')
      throw new ConfigError('addGuard: expected { name, admit() }');
    this.#guards = [...this.#guards, guard];
    if (guard.usesNow !== false) this.#clockGuards++;
    if (typeof guard.rescue === 'function') this.#rescuers++;
    this.#emit('guard:changed', { name: guard.name, attached: true });
    return () => {
      if (!this.#guards.includes(guard)) return;
      this.#guards = this.#guards.filter((g) => g !== guard);
      if (guard.usesNow !== false) this.#clockGuards--;
      if (typeof guard.rescue === 'function') this.#rescuers--;
      this.#emit('guard:changed', { name: guard.name, attached: false });
    };
  }

  /**
   * Lets a guard (or a companion: health checks, a shared store) publish its typed state on the router's bus, so an
   * observer subscribes to one bus (`router.on`) and never to each package's own emitter. Nothing is built or
   * called when no one listens.
   */
  publish<E extends PublishedEventName>(name: E, payload: RouterEvents[E]): void {
    if (this.#has(name)) this.#emit(name, payload);
  }

  /** Lets a front end publish a model fallback on the bus (`fallback`), for metrics, logs and `/stats`. */
  publishFallback(payload: RouterEvents['fallback']): void {
    if (this.#has('fallback')) this.#emit('fallback', payload);
  }

  /** Publishes a hedged request's progress on the bus (`hedge`): `@lb/exchange`'s `Hedger` does. */
  publishHedge(payload: RouterEvents['hedge']): void {
    if (this.#has('hedge')) this.#emit('hedge', payload);
  }

  /** Publishes a stream continuation on the bus (`stream:continued`). */
  publishContinue(payload: RouterEvents['stream:continued']): void {
    if (this.#has('stream:continued')) this.#emit('stream:continued', payload);
  }

  /** The guards attached now. */
  get guards(): readonly Guard[] {
    return this.#guards;
  }

  // ---------------------------------------------------------------- config

  /**
   * Swaps to a new config atomically. Endpoints that keep their id keep their statistics and health; in-flight
   * requests finish on what they started with. Emits `config:reloaded`. Throws (changing nothing) when invalid.
   */
  reload(config: RouterConfig): { added: string[]; removed: string[]; changed: string[] } {
    return this.#apply(config, false);
  }

  #apply(config: RouterConfig, initial: boolean): { added: string[]; removed: string[]; changed: string[] } {
    if (!config || typeof config !== 'object' || !Array.isArray(config.endpoints)) {
      throw new ConfigError('config.endpoints: expected an array of endpoints');
    }
    const factory = resolveStrategy(config.strategy);
    const random = config.random ?? this.#ownRandom;
    const strategyName = factory({ random, ...config.strategyOptions }).name;
    for (const [k, v] of [
      ['maxRetries', config.maxRetries],
      ['deadlineMs', config.deadlineMs],
      ['timeoutMs', config.timeoutMs],
      ['keyRetireMs', config.keyRetireMs],
      ['rateLimitCooldownMs', config.rateLimitCooldownMs],
      ['maxWaitMs', config.maxWaitMs],
    ] as const) {
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
        throw new ConfigError(`config.${k}: expected a number >= 0, received ${JSON.stringify(v)}`);
      }
    }
    validateOutlierEjection(config.outlierEjection);
    const old = initial ? undefined : this.#pool;
    const runtimes: Runtime[] = [];
    const byId = new Map<string, Runtime>();
    const added: string[] = [];
    const changed: string[] = [];
    const eps: Endpoint[] = [];
    config.endpoints.forEach((ec, i) => {
      const ep = new Endpoint(ec, i);
      eps.push(ep);
      if (byId.has(ep.id)) throw new ConfigError(`endpoints[${i}].id: duplicate id ${JSON.stringify(ep.id)}`);
      const prev = old?.byId.get(ep.id);
      let rt: Runtime;
      if (prev) {
        if (!prev.endpoint.sameAs(ep)) changed.push(ep.id);
        rt = prev;
      } else {
        added.push(ep.id);
        rt = {
          endpoint: ep,
          index: i,
          stats: newStats(),
          health: HEALTHY,
          rateLimitStreak: 0,
          streamBrokeAt: 0,
        };
      }
      runtimes.push(rt);
      byId.set(ep.id, rt);
    });
    const groups = new Map<string, ModelGroupConfig>();
    for (const [name, g] of Object.entries(config.models ?? {})) {
      if (!g || !Array.isArray(g.backends) || g.backends.length === 0) {
        throw new ConfigError(`models.${name}.backends: expected a non-empty array`);
      }
      g.backends.forEach((b, j) => {
        if (!byId.has(b.endpoint)) {
          throw new ConfigError(
            `models.${name}.backends[${j}].endpoint: unknown endpoint ${JSON.stringify(b.endpoint)}; known: ${[...byId.keys()].join(', ')}`,
          );
        }
      });
      if (g.strategy !== undefined) resolveStrategy(g.strategy);
      groups.set(name, g);
    }
    // Validation passed: commit. From here on nothing throws.
    const removed = old ? [...old.byId.keys()].filter((id) => !byId.has(id)) : [];
    for (let i = 0; i < runtimes.length; i++) {
      const rt = runtimes[i];
      const fresh = eps[i];
      const wasDisabledByConfig =
        rt.health.status === 'disabled' && rt.health.reason === 'disabled in config';
      rt.endpoint = fresh;
      rt.index = i;
      if (!fresh.enabled && rt.health.status !== 'disabled')
        this.#setHealth(rt, { status: 'disabled', reason: 'disabled in config' });
      else if (fresh.enabled && wasDisabledByConfig) this.#setHealth(rt, HEALTHY, 'enabled in config');
    }
    this.#config = config;
    this.#factory = factory;
    this.#strategyName = strategyName;
    this.#random = random;
    this.#now = config.now ?? Date.now;
    this.#maxRetries = config.maxRetries ?? DEFAULTS.maxRetries;
    this.#failover = config.failover ?? true;
    this.#deadlineMs = config.deadlineMs ?? DEFAULTS.deadlineMs;
    this.#alpha = config.ewmaAlpha ?? DEFAULTS.ewmaAlpha;
    this.#pool = { runtimes, byId, groups, routes: new Map(), defaultRoute: undefined };
    const result = { added, removed, changed };
    if (!initial) this.#emit('config:reloaded', result);
    return result;
  }

  #route(model: string | undefined): Route {
    const pool = this.#pool;
    if (model === undefined) {
      if (!pool.defaultRoute) pool.defaultRoute = this.#buildRoute(undefined);
      return pool.defaultRoute;
    }
    let r = pool.routes.get(model);
    if (!r) {
      if (pool.routes.size >= MAX_ROUTES) pool.routes.clear();
      r = this.#buildRoute(model);
      pool.routes.set(model, r);
    }
    return r;
  }

  #buildRoute(model: string | undefined): Route {
    const pool = this.#pool;
    const group = model === undefined ? undefined : pool.groups.get(model);
    const list: CandidateImpl[] = [];
    if (group) {
      for (const b of group.backends) {
        const rt = pool.byId.get(b.endpoint)!;
        const ep = rt.endpoint;
        list.push({
          endpoint: ep,
          index: rt.index,
          rt,
          stats: rt.stats,
          weight: b.weight ?? ep.weight,
          priority: b.priority ?? ep.priority,
          upstreamModel: b.model ?? ep.upstreamModel(model!),
          tags: b.tags ? [...ep.tags, ...b.tags] : ep.tags,
        });
      }
    } else {
      for (const rt of pool.runtimes) {
        const ep = rt.endpoint;
        if (!ep.serves(model)) continue;
        list.push({
          endpoint: ep,
          index: rt.index,
          rt,
          stats: rt.stats,
          weight: ep.weight,
          priority: ep.priority,
          upstreamModel: model === undefined ? undefined : ep.upstreamModel(model),
          tags: ep.tags,
        });
      }
    }
    list.sort((a, b) => a.priority - b.priority || a.index - b.index);
    const factory = group?.strategy !== undefined ? resolveStrategy(group.strategy) : this.#factory;
    return {
      model,
      candidates: list,
      strategy: factory({ random: this.#random, ...this.#config.strategyOptions }),
      eligible: EMPTY_LIST,
      eligibleVersion: -1,
      validUntil: 0,
    };
  }

  // ---------------------------------------------------------------- state

  #refresh(rt: Runtime, now: number): boolean {
    const h = rt.health;
    if (h.status === 'healthy') return true;
    if (h.status === 'disabled') return false;
    if (h.until <= now) {
      this.#setHealth(rt, HEALTHY, h.status === 'cooling' ? 'cooldown over' : 'retirement over');
      return true;
    }
    return false;
  }

  #setHealth(rt: Runtime, next: EndpointHealth, reason?: string): void {
    const from = rt.health.status;
    rt.health = next;
    this.#healthVersion++;
    if (this.#has('endpoint:state')) {
      this.#emit('endpoint:state', {
        endpointId: rt.endpoint.id,
        endpoint: rt.endpoint,
        from,
        to: next.status,
        reason: reason ?? ('reason' in next ? next.reason : 'healthy'),
        until: 'until' in next ? next.until : undefined,
      });
    }
  }

  /**
   * Overrides an endpoint's health by hand. `false` takes it out of rotation until set `true` again; `true` puts it
   * back at once, clearing any cooldown or retirement. Returns false for an unknown id.
   */
  setEndpointHealth(id: string, healthy: boolean, reason?: string): boolean {
    const rt = this.#pool.byId.get(id);
    if (!rt) return false;
    const why = reason ?? (healthy ? 'enabled by hand' : 'disabled by hand');
    if (healthy) {
      rt.rateLimitStreak = 0;
      this.#setProbation(rt, 0, undefined);
      if (rt.health.status !== 'healthy') this.#setHealth(rt, HEALTHY, why);
    } else {
      this.#setHealth(rt, { status: 'disabled', reason: why });
    }
    if (this.#has('endpoint:override')) {
      this.#emit('endpoint:override', { endpointId: id, endpoint: rt.endpoint, healthy, reason: why });
    }
    return true;
  }

  /**
   * Brings back an endpoint that is cooling down or retired (a passing health probe calls this). Leaves endpoints
   * disabled by hand alone. Returns true when the endpoint changed state.
   */
  recover(id: string, reason = 'probe passed'): boolean {
    const rt = this.#pool.byId.get(id);
    if (!rt || rt.health.status === 'healthy' || rt.health.status === 'disabled') return false;
    this.#setHealth(rt, HEALTHY, reason);
    return true;
  }

  /** Takes an endpoint out of rotation until `until` (a failing health probe calls this). Leaves disabled ones alone. */
  markUnhealthy(
    id: string,
    reason: string,
    forMs: number = this.#config.keyRetireMs ?? DEFAULTS.keyRetireMs,
  ): boolean {
    const rt = this.#pool.byId.get(id);
    if (!rt || rt.health.status === 'disabled') return false;
    this.#setHealth(rt, { status: 'unhealthy', until: this.#now() + forMs, reason });
    return true;
  }

  // ---------------------------------------------------------------- pick

  /** The clock, read for a pick (see `#clock`). */
  #tick(): number {
    const t = this.#now();
    if (t !== this.#clock) this.#clock = t;
    return this.#clock as number;
  }

  #fill(route: Route, req: RouteRequest, tried: number[] | undefined, now: number): number {
    const cands = route.candidates;
    const scratch = this.#scratch;
    const guards = this.#guards;
    const tags = req.tags;
    const pin = req.endpoint;
    let n = 0;
    for (let i = 0; i < cands.length; i++) {
      const c = cands[i];
      if (c.weight <= 0 || (pin !== undefined && c.endpoint.id !== pin)) continue;
      const rt = c.rt;
      if (rt.health.status !== 'healthy' && !this.#refresh(rt, now)) continue;
      if (tried !== undefined && tried.includes(rt.index)) continue;
      if (tags !== undefined && tags.length && !hasAll(c.tags, tags)) continue;
      let ok = true;
      for (let g = 0; g < guards.length; g++) {
        if (guards[g].admit(c.endpoint, req, now) !== true) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      scratch[n++] = c;
    }
    if (scratch.length !== n) scratch.length = n;
    return n;
  }

  #admits(c: CandidateImpl, req: RouteRequest, now: number): boolean {
    if (c.weight <= 0 || (c.rt.health.status !== 'healthy' && !this.#refresh(c.rt, now))) return false;
    for (const g of this.#guards) if (g.admit(c.endpoint, req, now) !== true) return false;
    return true;
  }

  /** The route's eligible list (healthy, enabled, weighted), rebuilt only when health changed or a cooldown ended. */
  #eligible(route: Route, now: number): readonly CandidateImpl[] {
    if (route.eligibleVersion === this.#healthVersion && now < route.validUntil) return route.eligible;
    const list: CandidateImpl[] = [];
    let validUntil = Infinity;
    for (const c of route.candidates) {
      if (c.weight <= 0) continue;
      const rt = c.rt;
      if (rt.health.status !== 'healthy' && !this.#refresh(rt, now)) {
        const h = rt.health;
        if (h.status !== 'disabled' && h.until < validUntil) validUntil = h.until;
        continue;
      }
      list.push(c);
    }
    route.eligible = list;
    route.eligibleVersion = this.#healthVersion;
    route.validUntil = validUntil;
    return list;
  }

  #choose(
    route: Route,
    req: RouteRequest,
    tried: number[] | undefined,
    attempt: number,
    now: number,
  ): CandidateImpl | undefined {
    const ctx = this.#ctx;
    ctx.model = route.model;
    ctx.requestId = req.requestId;
    ctx.attempt = attempt;
    // Fast path: no exclusions and no tags: the strategy chooses from the cached eligible list, and guards are
    // asked about the chosen endpoint only. A veto falls back to the full filter below.
    if (
      (tried === undefined || tried.length === 0) &&
      (req.tags === undefined || req.tags.length === 0) &&
      req.endpoint === undefined
    ) {
      const list = this.#eligible(route, now);
      if (list.length === 0) return undefined;
      ctx.stable = true;
      const c = (route.strategy.pick(list, ctx as PickContext) as CandidateImpl | undefined) ?? list[0];
      ctx.stable = false;
      const guards = this.#guards;
      let ok = true;
      for (let g = 0; g < guards.length; g++) {
        if (guards[g].admit(c.endpoint, req, now) !== true) {
          ok = false;
          break;
        }
      }
      if (ok) return c;
    }
    let n = this.#fill(route, req, tried, now);
    if (n === 0 && tried !== undefined && tried.length) n = this.#fill(route, req, undefined, now);
    if (n === 0) return this.#rescuers === 0 ? undefined : this.#rescue(route, req, now);
    const picked =
      (route.strategy.pick(this.#scratch, ctx as PickContext) as CandidateImpl | undefined) ??
      this.#scratch[0];
    this.#scratch.length = 0;
    return picked;
  }

  /** Every candidate was refused: a guard with `rescue` may let one through that every other guard admits. */
  #rescue(route: Route, req: RouteRequest, now: number): CandidateImpl | undefined {
    const tags = req.tags;
    const pin = req.endpoint;
    const list = this.#eligible(route, now).filter(
      (c) =>
        (tags === undefined || tags.length === 0 || hasAll(c.tags, tags)) &&
        (pin === undefined || c.endpoint.id === pin),
    );
    if (list.length === 0) return undefined;
    const endpoints = list.map((c) => c.endpoint);
    for (const g of this.#guards) {
      const ep = g.rescue?.(endpoints, req, now);
      const c = ep === undefined ? undefined : list.find((x) => x.endpoint === ep);
      if (c !== undefined && this.#guards.every((o) => o === g || o.admit(ep!, req, now) === true)) return c;
    }
    return undefined;
  }

  /**
   * The endpoint to use now for a request, or undefined when none can serve. Pure choice: it does not count the
   * request as started (use `execute` for that). Allocates nothing while some endpoint is admitted (when every one is
   * refused, a guard's `rescue` is asked with a list).
   *
   * @example
   * const c = router.pick({ model: 'gpt-4o' });
   * if (c) console.log(c.endpoint.id, c.upstreamModel);
   */
  pick(req: RouteRequest = EMPTY_REQUEST): Candidate | undefined {
    const route = this.#route(req.model);
    // The clock is read only when something depends on it (a cooldown to expire, a guard to ask).
    const now =
      route.eligibleVersion === this.#healthVersion &&
      route.validUntil === Infinity &&
      this.#clockGuards === 0
        ? 0
        : this.#tick();
    return this.#choose(route, req, undefined, 1, now);
  }

  /** Emits `request:exhausted` and throws the request's final error. */
  #exhausted(
    requestId: string,
    causes: AttemptCause[] | undefined,
    model: string | undefined,
    err: LbError,
  ): never {
    if (this.#has('request:exhausted'))
      this.#emit('request:exhausted', { requestId, attempts: causes ?? [], error: err, model });
    throw err;
  }

  // ---------------------------------------------------------------- execute

  /**
   * Runs `attempt` against picked endpoints with failover until one succeeds, the request is aborted, its deadline
   * passes or attempts run out. Classifies every outcome ({@link classify}), updates endpoint state, emits events.
   *
   * The attempt may resolve with anything; if the value has a numeric `status` (a fetch `Response`, an undici
   * response) it is classified by status and headers, so a 500 response fails over just like a thrown error.
   * Client errors (400, 404, …) are returned (or rethrown) as they came, without failover.
   *
   * @throws NoHealthyEndpointError when nothing could serve (its `attempts` say why), with `lastValue` holding the
   *   last failed response, if any. DeadlineExceededError when the deadline passed. The caller's abort reason when
   *   aborted.
   *
   * @example
   * const res = await router.execute({ model: 'gpt-4o' }, ({ endpoint, signal }) =>
   *   fetch(`${endpoint.url}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${endpoint.apiKey}` }, body, signal }),
   * );
   */
  async execute<T>(
    req: RouteRequest,
    attempt: (ctx: AttemptContext) => Promise<T>,
    options?: ExecuteOptions<T>,
  ): Promise<T> {
    const requestId = req.requestId ?? `req_${(++requestCounter).toString(36)}`;
    const model = req.model;
    const signal = req.signal;
    // One reading of each clock serves the first attempt (the common case); later ones read again.
    const startedAt = this.#tick();
    const t0 = perf.now();
    const deadlineMs = req.deadlineMs ?? this.#deadlineMs;
    const deadline = startedAt + deadlineMs;
    const maxAttempts = this.#failover ? (req.maxRetries ?? this.#maxRetries) + 1 : 1;
    const cfg = this.#config;
    const maxWaitMs = cfg.maxWaitMs ?? DEFAULTS.maxWaitMs;
    let tried: number[] | undefined;
    let causes: AttemptCause[] | undefined;
    let pending: { value: T } | undefined;
    let retries = 0;
    let waits = 0;
    const route = this.#route(model);
    if (route.candidates.length === 0) {
      throw new LbError(`The model ${JSON.stringify(model)} is not served by any endpoint`, {
        status: 404,
        type: 'invalid_request_error',
        code: 'model_not_found',
      });
    }
    const tags = req.tags;
    if (tags !== undefined && tags.length > 0 && !route.candidates.some((c) => hasAll(c.tags, tags))) {
      // No endpoint could ever serve it, healthy or not: the request is wrong, not the pool.
      throw new LbError(
        `No endpoint${model === undefined ? '' : ` serving ${JSON.stringify(model)}`} carries all of the tags ${JSON.stringify(tags)}`,
        { status: 400, type: 'invalid_request_error', code: 'no_endpoint_with_tags' },
      );
    }
    const pin = req.endpoint;
    if (pin !== undefined) {
      // A pin names one endpoint this request may use: one serving its model and carrying its tags (a key's own).
      const pc = route.candidates.find((c) => c.endpoint.id === pin);
      if (pc === undefined || (tags !== undefined && tags.length > 0 && !hasAll(pc.tags, tags)))
        throw new LbError(
          !this.#pool.byId.has(pin)
            ? `No endpoint has the id ${JSON.stringify(pin)}`
            : pc === undefined
              ? `The endpoint ${JSON.stringify(pin)} does not serve ${JSON.stringify(model)}`
              : `The endpoint ${JSON.stringify(pin)} is not one this request may use (tags ${JSON.stringify(tags)})`,
          { status: 400, type: 'invalid_request_error', code: 'unknown_endpoint' },
        );
    }
    let justWaited = false;

    for (let n = 1; n <= maxAttempts; ) {
      if (signal?.aborted) {
        pending = release(pending, options);
        throw abortReason(signal);
      }
      const now = n === 1 && waits === 0 ? startedAt : this.#tick();
      if (now >= deadline - DEADLINE_SLACK_MS) {
        pending = release(pending, options);
        return this.#exhausted(requestId, causes, model, new DeadlineExceededError(deadlineMs, causes ?? []));
      }
      const c = this.#choose(route, req, tried, n, now);
      if (!c) {
        const { until, reason, rateLimited } = this.#whyNone(route, req, now);
        const wait = until === undefined ? Infinity : until - now;
        if (wait <= Math.min(maxWaitMs, deadline - now) && waits < maxAttempts) {
          waits++;
          pending = release(pending, options);
          await sleep(Math.max(1, wait), signal);
          justWaited = true;
          continue;
        }
        const err = new NoHealthyEndpointError({
          attempts: causes ?? [],
          model,
          retryAfterMs: until === undefined ? undefined : Math.max(0, until - now),
          lastValue: pending?.value,
          reason: causes?.length ? undefined : rateLimited ? 'rate-limit' : reason,
        });
        return this.#exhausted(requestId, causes, model, err);
      }
      if (tried?.includes(c.rt.index) && !justWaited) {
        const b = cfg.backoff;
        const base = Math.min(b?.maxMs ?? 8000, (b?.initialMs ?? 250) * (b?.multiplier ?? 2) ** retries++);
        const delay = base * (1 - (b?.jitter ?? 0.5) * this.#random());
        if (now + delay >= deadline) {
          pending = release(pending, options);
          return this.#exhausted(
            requestId,
            causes,
            model,
            new DeadlineExceededError(deadlineMs, causes ?? []),
          );
        }
        pending = release(pending, options);
        await sleep(delay, signal);
        // Keep the choice unless health or a guard changed meanwhile.
        if (!this.#admits(c, req, this.#tick())) {
          justWaited = true;
          continue;
        }
      }
      justWaited = false;
      const rt = c.rt;
      const ep = c.endpoint;
      pending = release(pending, options);
      // Claim the endpoint synchronously with the choice, so concurrent requests see it taken.
      const guards = this.#guards;
      for (let g = 0; g < guards.length; g++) guards[g].acquire?.(ep, req, now, requestId);
      if (this.#has('endpoint:selected')) {
        this.#emit('endpoint:selected', {
          requestId,
          endpointId: ep.id,
          endpoint: ep,
          strategy: route.strategy.name,
          candidates: route.candidates.length,
          attempt: n,
          model,
        });
      }
      const stats = rt.stats;
      stats.requests++;
      stats.inFlight++;
      stats.lastUsedAt = now;
      if (this.#has('attempt:start')) {
        this.#emit('attempt:start', {
          requestId,
          endpointId: ep.id,
          endpoint: ep,
          attempt: n,
          model,
          upstreamModel: c.upstreamModel,
        });
      }
      // An attempt's timeout is the smaller of its own and what is left of the request's deadline.
      const ownMs = ep.timeoutMs ?? cfg.timeoutMs;
      const timeoutMs = ownMs === undefined ? undefined : Math.min(ownMs, Math.max(1, deadline - now));
      let controller: AbortController | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let attemptSignal = signal;
      let onAbort: (() => void) | undefined;
      if (timeoutMs !== undefined) {
        const ctl = new AbortController();
        controller = ctl;
        attemptSignal = ctl.signal;
        timer = setTimeout(() => ctl.abort(new AttemptTimeoutError(ep.id, timeoutMs)), timeoutMs);
        if (signal) {
          onAbort = () => ctl.abort(abortReason(signal));
          signal.addEventListener('abort', onAbort, { once: true });
        }
      }
      // 0: not held; 1: held by a stream; 2: hold cancelled (the attempt failed anyway).
      let held = 0;
      const a0 = n === 1 && waits === 0 ? t0 : perf.now();
      const ctx: AttemptContext = {
        endpoint: ep,
        upstreamModel: c.upstreamModel,
        model,
        attempt: n,
        streamProbation: rt.streamBrokeAt !== 0,
        requestId,
        signal: attemptSignal,
        deadline,
        hold: () => {
          if (held === 0) held = 1;
          let done = false;
          return (error?: unknown) => {
            if (done) return;
            done = true;
            if (onAbort) signal!.removeEventListener('abort', onAbort);
            if (held !== 1) return;
            this.#endHeld(rt, requestId, a0, error, signal);
          };
        },
        reportUsage: (usage: Usage, costUsd?: number) => {
          if (this.#has('attempt:usage'))
            this.#emit('attempt:usage', {
              requestId,
              endpointId: ep.id,
              endpoint: ep,
              usage,
              model,
              costUsd,
            });
        },
      };
      let value: T | undefined;
      let input: OutcomeInput;
      try {
        value = await attempt(ctx);
        const info = options?.inspect ? options.inspect(value) : defaultInspect(value);
        input = info ? { status: info.status, headers: info.headers } : {};
      } catch (error) {
        input = {
          error,
          callerAborted: signal?.aborted === true,
          timedOut: controller?.signal.aborted === true && !signal?.aborted,
        };
        if (!input.callerAborted && !input.timedOut && isAbortError(error) && !signal) input.error = error;
      } finally {
        if (timer !== undefined) clearTimeout(timer);
        // A held stream keeps the caller's abort linked to the attempt's signal until the stream ends.
        if (onAbort && held !== 1) signal!.removeEventListener('abort', onAbort);
      }
      const latencyMs = perf.now() - a0;
      const verdict = classify(input);
      if (verdict.kind === 'success' || verdict.kind === 'client') {
        stats.successes++;
        stats.consecutiveErrors = 0;
        stats.lastStatus = verdict.status ?? input.status;
        this.#observeLatency(stats, latencyMs);
        if (held === 0) stats.inFlight--;
        if (rt.rateLimitStreak) rt.rateLimitStreak = 0;
        if (this.#has('attempt:success')) {
          this.#emit('attempt:success', {
            requestId,
            endpointId: ep.id,
            endpoint: ep,
            attempt: n,
            status: input.status,
            latencyMs,
            headers: input.headers ?? undefined,
            model,
            held: held === 1,
          });
        }
        if (this.#has('request:done')) {
          this.#emit('request:done', {
            requestId,
            endpointId: ep.id,
            attempts: n,
            latencyMs: perf.now() - t0,
            status: input.status,
            model,
          });
        }
        if (input.error !== undefined) throw input.error;
        return value as T;
      }
      // A failure.
      stats.inFlight--;
      held = 2;
      const message = this.#failureMessage(ep, verdict, input);
      // A hedge's loser, cancelled because the other attempt answered first, is no failure of its endpoint.
      if (verdict.kind !== 'aborted' || !isHedgeCancel(signal))
        this.#recordFailure(rt, verdict, message, now);
      if (this.#has('attempt:failure')) {
        this.#emit('attempt:failure', {
          requestId,
          endpointId: ep.id,
          endpoint: ep,
          attempt: n,
          kind: verdict.kind,
          status: verdict.status,
          retryAfterMs: verdict.retryAfterMs,
          latencyMs,
          countsForBreaker: verdict.countsForBreaker,
          failover: verdict.failover,
          message,
          headers: input.headers ?? undefined,
          model,
        });
      }
      if (verdict.kind === 'aborted') {
        if (input.error === undefined && value !== undefined) release({ value }, options);
        throw signal ? abortReason(signal) : input.error;
      }
      (causes ??= []).push({
        endpointId: ep.id,
        attempt: n,
        kind: verdict.kind,
        status: verdict.status,
        retryAfterMs: verdict.retryAfterMs,
        message,
      });
      (tried ??= []).push(rt.index);
      if (input.error === undefined) pending = { value: value as T };
      n++;
    }
    const now = this.#now();
    // The last attempt ran out of time because the deadline bounded it: the request's deadline is what passed.
    if (causes?.at(-1)?.kind === 'timeout' && now >= deadline - DEADLINE_SLACK_MS) {
      pending = release(pending, options);
      return this.#exhausted(requestId, causes, model, new DeadlineExceededError(deadlineMs, causes));
    }
    const { until } = this.#whyNone(route, req, now);
    return this.#exhausted(
      requestId,
      causes,
      model,
      new NoHealthyEndpointError({
        attempts: causes ?? [],
        model,
        retryAfterMs: until === undefined ? undefined : Math.max(0, until - now),
        lastValue: pending?.value,
      }),
    );
  }

  /** Sets `streamBrokeAt` (0: off stream probation); tells listeners when that puts `rt` on or takes it off. */
  #setProbation(rt: Runtime, brokeAt: number, requestId: string | undefined): void {
    const was = rt.streamBrokeAt !== 0;
    rt.streamBrokeAt = brokeAt;
    const on = brokeAt !== 0;
    if (on !== was && this.#has('endpoint:probation'))
      this.#emit('endpoint:probation', { endpointId: rt.endpoint.id, endpoint: rt.endpoint, on, requestId });
  }

  #endHeld(
    rt: Runtime,
    requestId: string,
    a0: number,
    error: unknown,
    signal: AbortSignal | undefined,
  ): void {
    const stats = rt.stats;
    stats.inFlight--;
    const ep = rt.endpoint;
    let verdict: Verdict | undefined;
    let message: string | undefined;
    if (error !== undefined) {
      verdict = classify({ error, callerAborted: signal?.aborted === true || isAbortError(error) });
      if (verdict.kind !== 'aborted') {
        this.#setProbation(rt, perf.now(), requestId);
        message = this.#failureMessage(ep, verdict, { error });
        stats.failures++;
        stats.consecutiveErrors++;
        stats.lastErrorAt = this.#now();
        stats.lastError = message;
        stats.errorsByKind[verdict.kind] = (stats.errorsByKind[verdict.kind] ?? 0) + 1;
      }
    }
    // A stream that started after the last break and ended cleanly ends the probation.
    else if (rt.streamBrokeAt !== 0 && a0 >= rt.streamBrokeAt) this.#setProbation(rt, 0, requestId);
    if (this.#has('attempt:end')) {
      const ok = verdict === undefined || verdict.kind === 'aborted';
      this.#emit('attempt:end', {
        requestId,
        endpointId: ep.id,
        endpoint: ep,
        ok,
        kind: verdict?.kind ?? 'success',
        durationMs: perf.now() - a0,
        message,
      });
    }
  }

  #observeLatency(stats: EndpointStats, ms: number): void {
    stats.lastLatencyMs = ms;
    stats.ewmaLatencyMs =
      stats.latencySamples === 0 ? ms : stats.ewmaLatencyMs + this.#alpha * (ms - stats.ewmaLatencyMs);
    stats.latencySamples++;
  }

  #failureMessage(ep: Endpoint, verdict: Verdict, input: OutcomeInput): string {
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

  #recordFailure(rt: Runtime, verdict: Verdict, message: string, now: number): void {
    const stats = rt.stats;
    stats.failures++;
    stats.consecutiveErrors++;
    stats.lastErrorAt = now;
    stats.lastError = message;
    if (verdict.status !== undefined) stats.lastStatus = verdict.status;
    stats.errorsByKind[verdict.kind] = (stats.errorsByKind[verdict.kind] ?? 0) + 1;
    const cfg = this.#config;
    if (verdict.kind === 'rate-limit') {
      let ms = verdict.retryAfterMs;
      if (ms === undefined) {
        const base = cfg.rateLimitCooldownMs ?? DEFAULTS.rateLimitCooldownMs;
        ms = Math.min(cfg.maxCooldownMs ?? DEFAULTS.maxCooldownMs, base * 2 ** rt.rateLimitStreak);
      } else {
        ms = Math.min(ms, cfg.maxRetryAfterMs ?? DEFAULTS.maxRetryAfterMs);
      }
      rt.rateLimitStreak++;
      if (rt.health.status !== 'disabled') {
        this.#setHealth(rt, {
          status: 'cooling',
          until: now + ms,
          reason: `rate limited (429), cooling down ${Math.round(ms)} ms`,
        });
      }
    } else if (verdict.kind === 'auth') {
      if (rt.health.status !== 'disabled') {
        const ms = cfg.keyRetireMs ?? DEFAULTS.keyRetireMs;
        this.#setHealth(rt, {
          status: 'unhealthy',
          until: now + ms,
          reason: `key rejected (${verdict.status})`,
        });
      }
    }
  }

  /** Why no candidate is available now: the earliest time one frees up, and a description. */
  #whyNone(
    route: Route,
    req: RouteRequest,
    now: number,
  ): { until: number | undefined; reason: string; rateLimited: boolean } {
    let earliest: number | undefined;
    let allRateLimited = true;
    const parts: string[] = [];
    for (const c of route.candidates) {
      const rt = c.rt;
      const h = rt.health;
      let until: number | undefined;
      let why: string | undefined;
      let rl = false;
      if (c.weight <= 0) why = 'weight 0 (draining)';
      else if (h.status === 'disabled') why = h.reason;
      else if (h.status !== 'healthy' && h.until > now) {
        until = h.until;
        why = h.reason;
        rl = h.status === 'cooling';
      } else if (req.tags?.length && !hasAll(c.tags, req.tags)) why = 'tags do not match';
      else {
        for (const g of this.#guards) {
          const v = g.admit(c.endpoint, req, now);
          if (v !== true) {
            why = `${g.name}: ${(v as Veto).reason}`;
            until = (v as Veto).until;
            rl = (v as Veto).rateLimited === true;
            break;
          }
        }
      }
      if (why === undefined) {
        allRateLimited = false;
        continue;
      }
      if (!rl) allRateLimited = false;
      if (until !== undefined && (earliest === undefined || until < earliest)) earliest = until;
      parts.push(`${c.endpoint.id}: ${why}`);
    }
    return { until: earliest, reason: parts.join('; '), rateLimited: allRateLimited && parts.length > 0 };
  }

  // ---------------------------------------------------------------- snapshot

  /** Everything a health page shows, keys masked. */
  snapshot(): RouterSnapshot {
    const now = this.#now();
    const endpoints: EndpointSnapshot[] = [];
    let healthy = 0;
    let cooling = 0;
    let unhealthy = 0;
    let disabled = 0;
    let available = 0;
    let req = 0;
    let ok = 0;
    for (const rt of this.#pool.runtimes) {
      this.#refresh(rt, now);
      const ep = rt.endpoint;
      const h = rt.health;
      let unavailableReason: string | undefined = h.status === 'healthy' ? undefined : h.reason;
      const guards: Record<string, Record<string, unknown>> = {};
      for (const g of this.#guards) {
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
      const s = rt.stats;
      req += s.successes + s.failures;
      ok += s.successes;
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
          ...s,
          errorsByKind: { ...s.errorsByKind },
          successRate: s.successes + s.failures === 0 ? 1 : s.successes / (s.successes + s.failures),
        },
        guards,
      });
    }
    return {
      strategy: this.#strategyName,
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

  /** A short description, keys masked. */
  toJSON(): Record<string, unknown> {
    return { strategy: this.#strategyName, endpoints: this.endpoints.map((e) => e.toJSON()) };
  }
}

const EMPTY_REQUEST: RouteRequest = Object.freeze({});
const EMPTY_LIST: readonly CandidateImpl[] = Object.freeze([]);

function hasAll(have: readonly string[], want: readonly string[]): boolean {
  for (let i = 0; i < want.length; i++) if (!have.includes(want[i])) return false;
  return true;
}

function defaultInspect(value: unknown): { status?: number; headers?: HeadersLike | null } | undefined {
  if (value !== null && typeof value === 'object') {
    const v = value as { status?: unknown; statusCode?: unknown; headers?: unknown };
    const status =
      typeof v.status === 'number' ? v.status : typeof v.statusCode === 'number' ? v.statusCode : undefined;
    if (status !== undefined) return { status, headers: v.headers as HeadersLike | undefined };
  }
  return undefined;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(t);
      reject(abortReason(signal!));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Creates a router from a plain config object. Throws a {@link ConfigError} naming the first invalid field.
 *
 * @example
 * const router = createRouter({ endpoints: [{ url: 'http://127.0.0.1:8080/v1', apiKey: 'sk-…' }], strategy: 'round-robin' });
 * const choice = router.pick({ model: 'gpt-4o-mini' });
 */
export function createRouter(config: RouterConfig): Router {
  return new Router(config);
}
