import type { Endpoint, OutcomeKind, ProbeResult, Router } from '@lb/core';
import { ConfigError, classify, redact } from '@lb/core';
import type { BreakerHandle } from './breaker.js';
import { bool, defaultEnv, type Env, envNumber, fn, num } from './internal/options.js';

/**
 * Options of {@link attachHealthChecks}. Explicit options beat environment variables.
 *
 * Periodic probes are OFF unless `intervalMs` (or `OPENAI_HEALTH_CHECK_INTERVAL`) is set: a probe is a real request
 * to the provider, and some providers bill or rate-limit even `GET /models`. `checkNow()` works either way.
 *
 * @example
 * attachHealthChecks(router, { intervalMs: 30_000, breaker });
 */
export interface HealthCheckOptions {
  /**
   * Time between two probes of one endpoint, ms; 0 turns periodic probes off. Default: off.
   * Env: `OPENAI_HEALTH_CHECK_INTERVAL` (ms, or a duration such as `30s`); config files: `health_check_interval_seconds`.
   */
  intervalMs?: number;
  /** Probe timeout, ms. Default 5000. Env: `HEALTH_CHECK_TIMEOUT` (ms, or `5s`; `OPENAI_HEALTH_CHECK_TIMEOUT`, deprecated). */
  timeoutMs?: number;
  /** Random spread of each interval, as a fraction (0.1: ±10 %), so probes of many endpoints do not align. Default 0.1. */
  jitter?: number;
  /** `fetch` used for probes. Default `globalThis.fetch`. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /**
   * Extra headers for an endpoint's probe, merged over the default `authorization: Bearer <key>` plus the
   * endpoint's own `headers` (Azure's `api-key`, for instance). An empty string removes a header
   * (`{ authorization: '' }` for providers that want only `api-key`).
   */
  headers?: (endpoint: Endpoint) => Record<string, string> | undefined;
  /** Which endpoints to probe. Default: all (those disabled by hand are always skipped). */
  include?: (endpoint: Endpoint) => boolean;
  /** A breaker to inform: a passing probe moves an open circuit to half-open and closed without a user request. */
  breaker?: BreakerHandle;
  /** Skip a periodic probe when the endpoint served traffic within the last interval (traffic is the probe). Default false. */
  onlyWhenIdle?: boolean;
  /**
   * How long a failing probe takes an idle endpoint out of rotation, ms (a passing probe brings it back sooner).
   * Default: the router's `keyRetireMs` (300000).
   */
  unhealthyMs?: number;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** Randomness in [0, 1) for jitter. Default `Math.random`. */
  random?: () => number;
  /** Environment to read `OPENAI_HEALTH_CHECK_*` from. Default `process.env`. */
  env?: Env;
}

/** What one probe found: core's {@link ProbeResult}, published on the router's bus as `probe:result`. */
export type HealthCheckResult = ProbeResult;

/** One endpoint's probe history, for health pages. */
export type HealthSnapshot = {
  /** Epoch ms of the last probe (undefined: never probed). */
  lastCheckAt: number | undefined;
  ok: boolean | undefined;
  status: number | undefined;
  /** Response time of the last probe, ms. */
  responseTime: number | undefined;
  error?: string;
  checks: number;
  consecutiveFailures: number;
  /** Epoch ms of the next periodic probe, when scheduled. */
  nextCheckAt: number | undefined;
};

/**
 * What {@link attachHealthChecks} returns.
 *
 * @example
 * const health = attachHealthChecks(router, { intervalMs: 30_000 });
 * await health.checkNow('primary'); // [{ endpointId: 'primary', ok: true, status: 200, responseTime: 84, … }]
 */
export interface HealthCheckHandle {
  /** Probes one endpoint (or all) now; joins a probe already in flight instead of starting a second. */
  checkNow(id?: string): Promise<HealthCheckResult[]>;
  /** Every endpoint's last probe, by endpoint id. */
  snapshot(): Record<string, HealthSnapshot>;
  /** Subscribes to probe results; returns the disposer. */
  on(event: 'result', listener: (result: HealthCheckResult) => void): () => void;
  /** Stops every timer, aborts probes in flight, removes listeners. */
  dispose(): void;
}

interface Record_ {
  last: HealthCheckResult | undefined;
  checks: number;
  consecutiveFailures: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  nextCheckAt: number | undefined;
  inflight: Promise<HealthCheckResult> | undefined;
}

const perf: { now(): number } = typeof performance !== 'undefined' ? performance : Date;

class HealthChecker implements HealthCheckHandle {
  readonly #router: Router;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #jitter: number;
  readonly #fetch: (url: string, init: RequestInit) => Promise<Response>;
  readonly #o: HealthCheckOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #state = new Map<string, Record_>();
  readonly #controllers = new Set<AbortController>();
  readonly #listeners = new Set<(r: HealthCheckResult) => void>();
  #off: (() => void) | undefined;
  #disposed = false;

  constructor(router: Router, o: HealthCheckOptions) {
    if (!router || typeof router.on !== 'function' || typeof router.recover !== 'function')
      throw new ConfigError(`attachHealthChecks: expected an @lb/core Router, received ${String(router)}`);
    if (o === null || typeof o !== 'object')
      throw new ConfigError(`attachHealthChecks: options must be an object, received ${String(o)}`);
    const env = o.env ?? defaultEnv();
    this.#intervalMs =
      num('healthChecks.intervalMs', o.intervalMs, 0) ??
      envNumber(env, 'OPENAI_HEALTH_CHECK_INTERVAL', 0, { unit: 'ms' }) ??
      0;
    this.#timeoutMs =
      num('healthChecks.timeoutMs', o.timeoutMs, 1) ??
      envNumber(env, 'HEALTH_CHECK_TIMEOUT', 1, { unit: 'ms' }) ??
      // The name this package read before (@lb/config-env and lb-server read HEALTH_CHECK_TIMEOUT). Deprecated.
      envNumber(env, 'OPENAI_HEALTH_CHECK_TIMEOUT', 1, { unit: 'ms' }) ??
      5000;
    this.#jitter = num('healthChecks.jitter', o.jitter, 0, 1) ?? 0.1;
    num('healthChecks.unhealthyMs', o.unhealthyMs, 1);
    for (const k of ['fetch', 'headers', 'include', 'now', 'random'] as const) fn(`healthChecks.${k}`, o[k]);
    bool('healthChecks.onlyWhenIdle', o.onlyWhenIdle);
    if (o.breaker !== undefined && typeof o.breaker?.recordProbe !== 'function')
      throw new ConfigError('healthChecks.breaker: expected the handle attachBreaker returned');
    const f = o.fetch ?? (globalThis.fetch as HealthCheckOptions['fetch']);
    if (typeof f !== 'function') throw new ConfigError('healthChecks.fetch: no fetch available; pass one');
    this.#fetch = f;
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#random = o.random ?? Math.random;
    this.#router = router;
    if (this.#intervalMs > 0) {
      for (const ep of router.endpoints) this.#schedule(ep.id);
      this.#off = router.on('config:reloaded', (e) => {
        for (const id of e.removed) this.#forget(id);
        for (const id of e.added) this.#schedule(id);
      });
    } else {
      this.#off = router.on('config:reloaded', (e) => {
        for (const id of e.removed) this.#forget(id);
      });
    }
  }

  #rec(id: string): Record_ {
    let r = this.#state.get(id);
    if (r === undefined) {
      r = {
        last: undefined,
        checks: 0,
        consecutiveFailures: 0,
        timer: undefined,
        nextCheckAt: undefined,
        inflight: undefined,
      };
      this.#state.set(id, r);
    }
    return r;
  }

  #schedule(id: string): void {
    if (this.#disposed || this.#intervalMs <= 0) return;
    const r = this.#rec(id);
    if (r.timer !== undefined) clearTimeout(r.timer);
    const delay = Math.max(1, this.#intervalMs * (1 + this.#jitter * (2 * this.#random() - 1)));
    r.nextCheckAt = this.#now() + delay;
    const t = setTimeout(() => this.#tick(id), delay);
    (t as { unref?: () => void }).unref?.();
    r.timer = t;
  }

  #tick(id: string): void {
    const r = this.#state.get(id);
    if (r === undefined || this.#disposed) return;
    r.timer = undefined;
    r.nextCheckAt = undefined;
    const ep = this.#router.getEndpoint(id);
    if (ep === undefined) return;
    if (this.#o.onlyWhenIdle && !this.#idle(id)) {
      this.#schedule(id);
      return;
    }
    const p = this.#check(ep);
    if (p === undefined) this.#schedule(id);
    else {
      const again = () => this.#schedule(id);
      p.then(again, again);
    }
  }

  /** No attempt in flight and none started within the last interval. */
  #idle(id: string): boolean {
    const s = this.#router.getStats(id);
    if (s === undefined) return true;
    return s.inFlight === 0 && (s.lastUsedAt === 0 || this.#now() - s.lastUsedAt >= this.#intervalMs);
  }

  #check(ep: Endpoint): Promise<HealthCheckResult> | undefined {
    if (this.#disposed) return undefined;
    if (this.#router.getHealth(ep.id)?.status === 'disabled') return undefined;
    if (this.#o.include) {
      try {
        if (!this.#o.include(ep)) return undefined;
      } catch {
        return undefined;
      }
    }
    const r = this.#rec(ep.id);
    if (r.inflight) return r.inflight;
    const p = this.#probe(ep).then((res) => {
      r.inflight = undefined;
      return this.#apply(ep, r, res);
    });
    r.inflight = p;
    return p;
  }

  #url(ep: Endpoint): string {
    const path = ep.healthCheck;
    if (/^https?:\/\//i.test(path)) return path;
    return `${ep.url}${path.startsWith('/') ? '' : '/'}${path}`;
  }

  async #probe(ep: Endpoint): Promise<Omit<HealthCheckResult, 'action'>> {
    const headers: Record<string, string> = {};
    const key = ep.apiKey;
    if (key) headers.authorization = `Bearer ${key}`;
    Object.assign(headers, ep.headers);
    const ctl = new AbortController();
    this.#controllers.add(ctl);
    const timer = setTimeout(
      () => ctl.abort(new Error(`health probe timed out after ${this.#timeoutMs} ms`)),
      this.#timeoutMs,
    );
    (timer as { unref?: () => void }).unref?.();
    const lastCheckAt = this.#now();
    const t0 = perf.now();
    let status: number | undefined;
    let kind: OutcomeKind;
    let error: string | undefined;
    try {
      if (this.#o.headers) {
        Object.assign(headers, this.#o.headers(ep));
        for (const k of Object.keys(headers)) if (headers[k] === '') delete headers[k];
      }
      const res = await this.#fetch(this.#url(ep), { method: 'GET', headers, signal: ctl.signal });
      status = res.status;
      kind = classify({ status, headers: res.headers }).kind;
      // Free the connection without reading a body nobody needs.
      res.body?.cancel().catch(() => {});
      if (kind !== 'success') error = `HTTP ${status}`;
    } catch (err) {
      const timedOut = ctl.signal.aborted && !this.#disposed;
      kind = classify({ error: err, timedOut, callerAborted: this.#disposed }).kind;
      const e = err as { message?: unknown; cause?: { code?: unknown } };
      let msg = timedOut
        ? `health probe timed out after ${this.#timeoutMs} ms`
        : typeof e?.message === 'string'
          ? e.message
          : String(err);
      if (typeof e?.cause?.code === 'string' && !msg.includes(e.cause.code)) msg += ` (${e.cause.code})`;
      error = redact(msg, [key]);
    } finally {
      clearTimeout(timer);
      this.#controllers.delete(ctl);
    }
    const out: Omit<HealthCheckResult, 'action'> = {
      endpointId: ep.id,
      ok: kind === 'success',
      kind,
      status,
      responseTime: perf.now() - t0,
      lastCheckAt,
    };
    if (error !== undefined) out.error = error;
    return out;
  }

  #apply(ep: Endpoint, r: Record_, res: Omit<HealthCheckResult, 'action'>): HealthCheckResult {
    let action: HealthCheckResult['action'] = 'none';
    if (!this.#disposed && this.#router.getEndpoint(ep.id) !== undefined) {
      if (res.ok) {
        // Only a retirement (401, failed probe) ends on a passing probe: a 429 cooldown keeps its Retry-After.
        if (
          this.#router.getHealth(ep.id)?.status === 'unhealthy' &&
          this.#router.recover(ep.id, 'health probe passed')
        )
          action = 'recovered';
        this.#o.breaker?.recordProbe(ep.id, true);
      } else if (
        (res.kind === 'server' || res.kind === 'network' || res.kind === 'timeout' || res.kind === 'auth') &&
        this.#idle(ep.id)
      ) {
        const reason = `health probe failed: ${res.error ?? res.kind}`;
        if (this.#router.markUnhealthy(ep.id, reason, this.#o.unhealthyMs)) action = 'marked-unhealthy';
      }
    }
    const result: HealthCheckResult = { ...res, action };
    r.last = result;
    r.checks++;
    r.consecutiveFailures = res.ok ? 0 : r.consecutiveFailures + 1;
    for (const l of this.#listeners) {
      try {
        l(result);
      } catch {
        // A throwing listener must not stop probing.
      }
    }
    if (!this.#disposed) this.#router.publish('probe:result', result);
    return result;
  }

  #forget(id: string): void {
    const r = this.#state.get(id);
    if (r?.timer !== undefined) clearTimeout(r.timer);
    this.#state.delete(id);
  }

  async checkNow(id?: string): Promise<HealthCheckResult[]> {
    const eps =
      id === undefined
        ? this.#router.endpoints
        : (() => {
            const ep = this.#router.getEndpoint(id);
            if (!ep) throw new ConfigError(`checkNow: unknown endpoint ${JSON.stringify(id)}`);
            return [ep];
          })();
    const probes: Promise<HealthCheckResult>[] = [];
    for (const ep of eps) {
      const p = this.#check(ep);
      if (p) probes.push(p);
    }
    return Promise.all(probes);
  }

  snapshot(): Record<string, HealthSnapshot> {
    const out: Record<string, HealthSnapshot> = {};
    for (const ep of this.#router.endpoints) {
      const r = this.#state.get(ep.id);
      const last = r?.last;
      const s: HealthSnapshot = {
        lastCheckAt: last?.lastCheckAt,
        ok: last?.ok,
        status: last?.status,
        responseTime: last?.responseTime,
        checks: r?.checks ?? 0,
        consecutiveFailures: r?.consecutiveFailures ?? 0,
        nextCheckAt: r?.nextCheckAt,
      };
      if (last?.error !== undefined) s.error = last.error;
      out[ep.id] = s;
    }
    return out;
  }

  on(event: 'result', listener: (result: HealthCheckResult) => void): () => void {
    if (event !== 'result')
      throw new TypeError(`healthChecks.on: unknown event ${JSON.stringify(event)}; known: 'result'`);
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#off?.();
    for (const r of this.#state.values()) if (r.timer !== undefined) clearTimeout(r.timer);
    for (const c of this.#controllers) c.abort();
    this.#controllers.clear();
    this.#listeners.clear();
  }
}

/**
 * Attaches active health checks to a router: per endpoint, a cheap probe (`GET {url}{healthCheck}`, `/models` by
 * default) every `intervalMs`, jittered, never two in flight for one endpoint. A passing probe brings back a key the
 * router retired after a 401 (`router.recover`) and moves an open breaker circuit on; a failing probe (5xx, network,
 * timeout, 401) takes an idle endpoint out (`router.markUnhealthy`) before a user meets it. Response times feed
 * `snapshot()`. Periodic probes are off unless `intervalMs` / `OPENAI_HEALTH_CHECK_INTERVAL` is set.
 *
 * @example
 * import { attachBreaker, attachHealthChecks } from '@lb/breaker';
 *
 * const breaker = attachBreaker(router);
 * const health = attachHealthChecks(router, { intervalMs: 30_000, breaker });
 * health.on('result', (r) => console.log(r.endpointId, r.ok, r.responseTime));
 * // later: health.dispose(); breaker.dispose();
 */
export function attachHealthChecks(router: Router, options: HealthCheckOptions = {}): HealthCheckHandle {
  return new HealthChecker(router, options);
}
