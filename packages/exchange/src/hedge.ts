import {
  type AttemptContext,
  ConfigError,
  type Endpoint,
  type ExecuteOptions,
  type Guard,
  HEDGE_CANCELLED,
  type RouteRequest,
  type Router,
} from '@lb/core';
import { defaultTimers, type Timers } from './attempt.js';

/**
 * Hedging for one model or group, or for all (`hedge_after_ms`, `hedge_after`, `hedge_budget`, `hedge_unsafe` in
 * the config; `LB_HEDGE_AFTER_MS`, `LB_HEDGE_BUDGET` in the environment).
 */
export interface HedgeOptions {
  /** A fixed delay, ms: a second attempt goes out when the first has not answered by then. 0: off. */
  afterMs?: number;
  /**
   * The delay as a percentile of the route's observed latency (`"p95"`, `"p99"`, `"p50"`…). Until the route has
   * {@link HEDGE_MIN_SAMPLES} samples, `afterMs` serves when given (else no hedge).
   */
  after?: string;
  /** Extra upstream requests hedges may add, as a share of the route's requests over a sliding minute. Default 0.1. */
  budget?: number;
  /** Hedge also requests that are not safe to send twice ({@link hedgeSafe}). Default false. */
  unsafe?: boolean;
}

/** Global hedging, and per model or group (`models`), which replaces the global settings for that model. */
export interface HedgeConfig extends HedgeOptions {
  models?: Readonly<Record<string, HedgeOptions>>;
}

/** Samples a route needs before a percentile delay (`after = "p95"`) is trusted. */
export const HEDGE_MIN_SAMPLES = 20;
/** The header on answers a hedge won. */
export const HEDGED_HEADER = 'x-lb-hedged';
const DEFAULT_BUDGET = 0.1;
const RING = 256;
const RECOMPUTE_EVERY = 32;
const BUCKETS = 6;
const BUCKET_MS = 10_000;

/**
 * Whether a request may be sent twice without harm: POST chat completions, completions, embeddings, moderations,
 * and responses, unless the body asks the upstream to store what it makes (`store: true`; for the Responses API
 * `store` defaults to true upstream, so only `store: false` is safe). Never files, uploads, batches, fine-tuning,
 * vector stores, assistants, images, audio, or any other call that creates an object or costs per call.
 */
export function hedgeSafe(
  operation: string,
  method: string,
  path: string,
  json: Record<string, unknown> | undefined,
): boolean {
  if (method !== 'POST') return false;
  switch (operation) {
    case 'chat.completions':
    case 'completions':
      return json?.store !== true;
    case 'embeddings':
    case 'moderations':
      return true;
    case 'responses': {
      let end = path.indexOf('?');
      if (end < 0) end = path.length;
      const p = path.slice(0, end).replace(/\/+$/, '');
      return (p === '/responses' || p === '/v1/responses') && json?.store === false;
    }
    default:
      return false;
  }
}

/** A route's recent latencies (a ring of the last 256), its percentile recomputed every 32 samples. */
export class LatencySketch {
  readonly #ring = new Float64Array(RING);
  #n = 0;
  #since = 0;
  #q = Number.NaN;
  #value = 0;

  add(ms: number): void {
    this.#ring[this.#n++ % RING] = ms;
    if (++this.#since >= RECOMPUTE_EVERY) this.#q = Number.NaN;
  }

  get count(): number {
    return this.#n;
  }

  /** The `q` quantile (0..1) of the samples, or undefined below {@link HEDGE_MIN_SAMPLES}. */
  quantile(q: number): number | undefined {
    if (this.#n < HEDGE_MIN_SAMPLES) return undefined;
    if (this.#q !== q) {
      const n = Math.min(this.#n, RING);
      const sorted = this.#ring.slice(0, n).sort();
      this.#value = sorted[Math.min(n - 1, Math.floor(q * n))];
      this.#q = q;
      this.#since = 0;
    }
    return this.#value;
  }
}

/** Requests and hedges over a sliding minute (six 10 s buckets). */
export class HedgeBudget {
  readonly #requests = new Uint32Array(BUCKETS);
  readonly #hedges = new Uint32Array(BUCKETS);
  #bucket = 0;

  constructor(readonly share: number) {}

  #advance(now: number): number {
    const b = Math.floor(now / BUCKET_MS);
    if (b !== this.#bucket) {
      const steps = Math.min(BUCKETS, b - this.#bucket);
      for (let i = 1; i <= steps; i++) {
        const k = (this.#bucket + i) % BUCKETS;
        this.#requests[k] = 0;
        this.#hedges[k] = 0;
      }
      this.#bucket = b;
    }
    return b % BUCKETS;
  }

  request(now: number): void {
    this.#requests[this.#advance(now)]++;
  }

  /** Takes a hedge when the minute's hedges stay within `share` of its requests. */
  take(now: number): boolean {
    const k = this.#advance(now);
    let r = 0;
    let h = 0;
    for (let i = 0; i < BUCKETS; i++) {
      r += this.#requests[i];
      h += this.#hedges[i];
    }
    if (h + 1 > this.share * r) return false;
    this.#hedges[k]++;
    return true;
  }
}

/** One model's (or the global) hedging: its delay, budget and latency sketch. */
export class HedgeRoute {
  readonly sketch = new LatencySketch();
  readonly budget: HedgeBudget;
  readonly afterMs: number | undefined;
  /** The percentile of `after`, 0..1. */
  readonly quantile: number | undefined;
  readonly unsafe: boolean;

  constructor(o: HedgeOptions) {
    this.afterMs = o.afterMs !== undefined && o.afterMs > 0 ? o.afterMs : undefined;
    this.quantile = o.after === undefined ? undefined : parsePercentile(o.after);
    this.budget = new HedgeBudget(o.budget ?? DEFAULT_BUDGET);
    this.unsafe = o.unsafe === true;
  }

  /** The delay before a hedge now, or undefined (no hedge: the percentile has too few samples and no fixed delay). */
  delay(): number | undefined {
    if (this.quantile !== undefined) {
      const q = this.sketch.quantile(this.quantile);
      if (q !== undefined) return Math.max(1, q);
    }
    return this.afterMs;
  }
}

/** Parses `"p95"`, `"p99.9"`, `"95"` into 0.95…; throws on anything else. */
export function parsePercentile(s: string): number {
  const m = /^p?(\d{1,2}(?:\.\d+)?)$/i.exec(s.trim());
  const v = m ? Number(m[1]) : Number.NaN;
  if (!(v > 0 && v < 100))
    throw new ConfigError(`hedge_after must be a percentile such as "p95" (received ${JSON.stringify(s)})`);
  return v / 100;
}

/** True when the options turn hedging on. */
function enables(o: HedgeOptions | undefined): boolean {
  return o !== undefined && ((o.afterMs !== undefined && o.afterMs > 0) || o.after !== undefined);
}

/** What the attempt the hedge races reports when it wins or loses. */
export interface HedgeResult<T> {
  value: T;
  /** The hedge (the second attempt) answered first. */
  hedged: boolean;
}

/** Options of one hedged run. */
export interface HedgeRunOptions<T> extends ExecuteOptions<T> {
  /** Gives up a value that lost the race after it resolved (its stream, its hold). Default: `discard`. */
  cancel?: (value: T, reason: Error) => void;
}

const AVOID = Symbol('lb.hedge.avoid');
type HedgeRequest = RouteRequest & { [AVOID]?: string };

/** The guard that keeps a hedge off the endpoint the first attempt is on. */
const avoidGuard: Guard = {
  name: 'hedge',
  usesNow: false,
  admit(endpoint: Endpoint, request: RouteRequest) {
    const avoid = (request as HedgeRequest)[AVOID];
    if (avoid === undefined || avoid !== endpoint.id) return true;
    return { until: Number.POSITIVE_INFINITY, reason: 'the first attempt of this hedged request is there' };
  },
};

/** @internal `req` kept off `endpointId` (the `hedge` guard, attached on first use, vetoes it for this request). */
export function avoiding(router: Router, req: RouteRequest, endpointId: string): RouteRequest {
  if (!router.guards.some((g) => g.name === 'hedge')) router.addGuard(avoidGuard);
  const r: HedgeRequest = req;
  r[AVOID] = endpointId;
  return r;
}

/** The reason the losing attempt is cancelled with (an abort: no failure, no breaker count, no probation). */
export function hedgeCancelled(): Error {
  const e = new Error('Cancelled: the other attempt of this hedged request answered first');
  e.name = 'AbortError';
  (e as { code?: string }).code = HEDGE_CANCELLED;
  return e;
}

/**
 * Hedged requests for one surface: when the first attempt of a request has not answered within the route's delay,
 * the same request goes to the next-best endpoint; the first success wins and the other is cancelled. Built only
 * when some model (or the whole router) has hedging on: otherwise a surface holds none and no request pays for it.
 */
export class Hedger {
  readonly #router: Router;
  readonly #timers: Timers;
  readonly #global: HedgeRoute | undefined;
  readonly #models = new Map<string, HedgeRoute | null>();
  readonly #opts: HedgeConfig;
  readonly #now: () => number;

  constructor(
    router: Router,
    config: HedgeConfig,
    timers: Timers = defaultTimers,
    now: () => number = Date.now,
  ) {
    this.#router = router;
    this.#timers = timers;
    this.#opts = config;
    this.#now = now;
    this.#global = enables(config) ? new HedgeRoute(config) : undefined;
    if (!router.guards.some((g) => g.name === 'hedge')) router.addGuard(avoidGuard);
  }

  /** True when the config turns hedging on anywhere. */
  static enabled(config: HedgeConfig | undefined): boolean {
    if (config === undefined) return false;
    if (enables(config)) return true;
    for (const k in config.models ?? {}) if (enables(config.models![k])) return true;
    return false;
  }

  /**
   * The hedging of a request, or undefined when it is not hedged (its model has no hedging; it is not safe to send
   * twice and the route does not opt in; it is a stream and `stream` is false for its phase).
   */
  routeOf(model: string | undefined, safe: boolean): HedgeRoute | undefined {
    let r: HedgeRoute | undefined | null = this.#global;
    if (model !== undefined) {
      const own = this.#models.get(model);
      if (own !== undefined) r = own ?? undefined;
      else {
        const o = this.#opts.models?.[model];
        if (o !== undefined) {
          const route = enables(o) ? new HedgeRoute({ budget: this.#opts.budget, ...o }) : null;
          this.#models.set(model, route);
          r = route ?? undefined;
        }
      }
    }
    if (r === undefined || r === null) return undefined;
    return safe || r.unsafe ? r : undefined;
  }

  /**
   * Runs the request as `router.execute` would, racing a second attempt against the first when the first has not
   * answered within the route's delay (and the budget allows, and another endpoint can take it). At most one timer.
   */
  run<T>(
    route: HedgeRoute,
    req: RouteRequest,
    attempt: (ctx: AttemptContext) => Promise<T>,
    options?: HedgeRunOptions<T>,
  ): Promise<HedgeResult<T>> {
    const router = this.#router;
    const timers = this.#timers;
    const t0 = this.#now();
    route.budget.request(t0);
    const delay = route.delay();
    if (delay === undefined) {
      return router.execute(req, attempt, options).then((value) => {
        route.sketch.add(this.#now() - t0);
        return { value, hedged: false };
      });
    }
    const requestId = (req.requestId ??= `req_h${(++seq).toString(36)}`);
    const caller = req.signal;
    const first = new AbortController();
    const second = new AbortController();
    const onCaller = () => {
      const r = caller!.reason;
      first.abort(r);
      second.abort(r);
    };
    if (caller !== undefined) {
      if (caller.aborted) onCaller();
      else caller.addEventListener('abort', onCaller, { once: true });
    }
    let firstEp: string | undefined;
    let hedgeEp: string | undefined;
    return new Promise<HedgeResult<T>>((resolve, reject) => {
      let done = false;
      let started = false;
      let pending = 1;
      let error: unknown;
      let timer: unknown;
      const settle = () => {
        done = true;
        if (timer !== undefined) timers.clearTimeout(timer);
        timer = undefined;
        if (caller !== undefined) caller.removeEventListener('abort', onCaller);
      };
      const win = (value: T, hedged: boolean) => {
        if (done) {
          // Both answered: the later one is given up.
          const reason = hedgeCancelled();
          if (options?.cancel) options.cancel(value, reason);
          else void options?.discard?.(value);
          return;
        }
        settle();
        if (started) {
          (hedged ? first : second).abort(hedgeCancelled());
          router.publishHedge({
            requestId,
            model: req.model,
            phase: hedged ? 'won' : 'lost',
            endpointId: firstEp,
            hedgeEndpointId: hedgeEp,
            delayMs: delay,
          });
        }
        route.sketch.add(this.#now() - t0);
        resolve({ value, hedged });
      };
      const lose = (e: unknown) => {
        pending--;
        if (done) return;
        error ??= e;
        if (pending > 0) return;
        settle();
        reject(error);
      };
      const fire = () => {
        timer = undefined;
        if (done) return;
        const now = this.#now();
        const hreq: HedgeRequest = { ...req, signal: second.signal, requestId: `${requestId}.h` };
        hreq[AVOID] = firstEp;
        // Another endpoint must be able to take it now: a hedge never waits for a cooldown.
        if (router.pick(hreq) === undefined) return;
        if (!route.budget.take(now)) {
          router.publishHedge({
            requestId,
            model: req.model,
            phase: 'skipped',
            endpointId: firstEp,
            hedgeEndpointId: undefined,
            delayMs: delay,
          });
          return;
        }
        started = true;
        pending++;
        router.publishHedge({
          requestId,
          model: req.model,
          phase: 'started',
          endpointId: firstEp,
          hedgeEndpointId: undefined,
          delayMs: delay,
        });
        router
          .execute(
            hreq,
            (ctx) => {
              hedgeEp = ctx.endpoint.id;
              return attempt(ctx);
            },
            options,
          )
          .then((v) => win(v, true), lose);
      };
      timer = timers.setTimeout(fire, delay, undefined);
      router
        .execute(
          { ...req, signal: first.signal },
          (ctx) => {
            firstEp = ctx.endpoint.id;
            return attempt(ctx);
          },
          options,
        )
        .then(
          (v) => win(v, false),
          (e) => {
            // The first failed for good before any hedge went out: that is the answer.
            if (!started && !done) {
              pending--;
              settle();
              reject(e);
              return;
            }
            lose(e);
          },
        );
    });
  }
}

let seq = 0;
