/**
 * The router: the public face of endpoint selection and failover. Each behaviour lives in one file of `router/`:
 * `config` (options, defaults), `route-table` (pool and routes), `health` (endpoint health), `outcome` (what an
 * outcome records), `probation` (held streams, stream probation), `select` (pick), `execute` (the failover loop),
 * `snapshot` (the health page's view), `reload` (applying a config), `bus` (events). This class only delegates.
 */

import type { Endpoint } from './endpoint.js';
import { ConfigError } from './errors.js';
import type { PublishedEventName, RouterEventName, RouterEvents } from './events.js';
import type { Guard } from './guard.js';
import { attachOutlierEjection } from './outlier.js';
import type { RouteRequest } from './request.js';
import type { RouterConfig } from './router/config.js';
import { type AttemptContext, type ExecuteOptions, execute } from './router/execute.js';
import { markUnhealthy, recover, refresh, setEndpointHealth } from './router/health.js';
import { applyConfig } from './router/reload.js';
import { routeFor } from './router/route-table.js';
import { RouterState } from './router/router-state.js';
import { choose, EMPTY_REQUEST, tick } from './router/select.js';
import { type RouterSnapshot, snapshot } from './router/snapshot.js';
import type { EndpointHealth, EndpointStats } from './state.js';
import type { Candidate } from './strategy.js';

export type { BackoffOptions, ModelBackendConfig, ModelGroupConfig, RouterConfig } from './router/config.js';
export type { AttemptContext, ExecuteOptions } from './router/execute.js';
export { HEDGE_CANCELLED } from './router/execute.js';
export type { EndpointSnapshot, RouterSnapshot } from './router/snapshot.js';

/**
 * Holds the endpoint pool and each endpoint's state; picks endpoints and runs attempts with failover.
 * Create it with {@link createRouter}.
 */
export class Router {
  readonly #s = new RouterState();

  constructor(config: RouterConfig) {
    applyConfig(this.#s, config, true);
    attachOutlierEjection(this);
  }

  /** The current config (immutable: derive a new one and `reload` it). */
  get config(): RouterConfig {
    return this.#s.config;
  }

  /** Name of the default strategy. */
  get strategy(): string {
    return this.#s.strategyName;
  }

  /** Every endpoint of the current pool, in config order. */
  get endpoints(): readonly Endpoint[] {
    return this.#s.pool.runtimes.map((r) => r.endpoint);
  }

  /** One endpoint by id. */
  getEndpoint(id: string): Endpoint | undefined {
    return this.#s.pool.byId.get(id)?.endpoint;
  }

  /** An endpoint's live statistics (the object itself: read, do not write). */
  getStats(id: string): Readonly<EndpointStats> | undefined {
    return this.#s.pool.byId.get(id)?.stats;
  }

  /** An endpoint's health. */
  getHealth(id: string): EndpointHealth | undefined {
    const s = this.#s;
    const rt = s.pool.byId.get(id);
    if (!rt) return undefined;
    refresh(s, rt, s.now());
    return rt.health;
  }

  /** Exposed model names: model groups plus every model an endpoint lists. */
  models(): string[] {
    const pool = this.#s.pool;
    const out = new Set<string>(pool.groups.keys());
    for (const rt of pool.runtimes) for (const m of rt.endpoint.models) out.add(m);
    return [...out];
  }

  // ---------------------------------------------------------------- events (router/bus.ts)

  /**
   * Subscribes to a router event; returns the disposer.
   *
   * @example
   * const off = router.on('attempt:failure', (e) => console.log(e.endpointId, e.kind));
   * off();
   */
  on<E extends RouterEventName>(event: E, listener: (payload: RouterEvents[E]) => void): () => void {
    return this.#s.bus.on(event, listener);
  }

  /** Subscribes for one event. Returns the disposer. */
  once<E extends RouterEventName>(event: E, listener: (payload: RouterEvents[E]) => void): () => void {
    return this.#s.bus.once(event, listener);
  }

  /**
   * How many listeners an event has: lets a producer skip work nobody consumes (reading token usage from a body
   * when nothing listens for `attempt:usage`).
   */
  listenerCount(event: RouterEventName): number {
    return this.#s.bus.listenerCount(event);
  }

  // ---------------------------------------------------------------- guards

  /** Attaches a guard (breaker, rate limiter, provider capabilities…). Returns the disposer. */
  addGuard(guard: Guard): () => void {
    if (!guard || typeof guard.admit !== 'function')
      throw new ConfigError('addGuard: expected { name, admit() }');
    const s = this.#s;
    s.guards = [...s.guards, guard];
    if (guard.usesNow !== false) s.clockGuards++;
    if (typeof guard.rescue === 'function') s.rescuers++;
    s.bus.emit('guard:changed', { name: guard.name, attached: true });
    return () => {
      if (!s.guards.includes(guard)) return;
      s.guards = s.guards.filter((g) => g !== guard);
      if (guard.usesNow !== false) s.clockGuards--;
      if (typeof guard.rescue === 'function') s.rescuers--;
      s.bus.emit('guard:changed', { name: guard.name, attached: false });
    };
  }

  /**
   * Lets a guard (or a companion: health checks, a shared store) publish its typed state on the router's bus, so an
   * observer subscribes to one bus (`router.on`) and never to each package's own emitter. Nothing is built or
   * called when no one listens.
   */
  publish<E extends PublishedEventName>(name: E, payload: RouterEvents[E]): void {
    const bus = this.#s.bus;
    if (bus.has(name)) bus.emit(name, payload);
  }

  /** Lets a front end publish a model fallback on the bus (`fallback`), for metrics, logs and `/stats`. */
  publishFallback(payload: RouterEvents['fallback']): void {
    const bus = this.#s.bus;
    if (bus.has('fallback')) bus.emit('fallback', payload);
  }

  /** Publishes a hedged request's progress on the bus (`hedge`): `@lb/exchange`'s `Hedger` does. */
  publishHedge(payload: RouterEvents['hedge']): void {
    const bus = this.#s.bus;
    if (bus.has('hedge')) bus.emit('hedge', payload);
  }

  /** Publishes a stream continuation on the bus (`stream:continued`). */
  publishContinue(payload: RouterEvents['stream:continued']): void {
    const bus = this.#s.bus;
    if (bus.has('stream:continued')) bus.emit('stream:continued', payload);
  }

  /** The guards attached now. */
  get guards(): readonly Guard[] {
    return this.#s.guards;
  }

  // ---------------------------------------------------------------- config (router/reload.ts)

  /**
   * Swaps to a new config atomically. Endpoints that keep their id keep their statistics and health; in-flight
   * requests finish on what they started with. Emits `config:reloaded`. Throws (changing nothing) when invalid.
   */
  reload(config: RouterConfig): { added: string[]; removed: string[]; changed: string[] } {
    return applyConfig(this.#s, config, false);
  }

  // ---------------------------------------------------------------- health (router/health.ts)

  /**
   * Overrides an endpoint's health by hand. `false` takes it out of rotation until set `true` again; `true` puts it
   * back at once, clearing any cooldown or retirement. Returns false for an unknown id.
   */
  setEndpointHealth(id: string, healthy: boolean, reason?: string): boolean {
    return setEndpointHealth(this.#s, id, healthy, reason);
  }

  /**
   * Brings back an endpoint that is cooling down or retired (a passing health probe calls this). Leaves endpoints
   * disabled by hand alone. Returns true when the endpoint changed state.
   */
  recover(id: string, reason = 'probe passed'): boolean {
    return recover(this.#s, id, reason);
  }

  /** Takes an endpoint out of rotation until `until` (a failing health probe calls this). Leaves disabled ones alone. */
  markUnhealthy(id: string, reason: string, forMs?: number): boolean {
    return markUnhealthy(this.#s, id, reason, forMs);
  }

  // ---------------------------------------------------------------- pick (router/select.ts)

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
    const s = this.#s;
    const route = routeFor(s.pool, req.model, s);
    // The clock is read only when something depends on it (a cooldown to expire, a guard to ask). Written out here,
    // not in a helper of `select.ts`: V8 then inlines the whole pick into its caller's loop.
    const now =
      route.eligibleVersion === s.healthVersion && route.validUntil === Infinity && s.clockGuards === 0
        ? 0
        : tick(s);
    return choose(s, route, req, undefined, 1, now);
  }

  // ---------------------------------------------------------------- execute (router/execute.ts)

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
  execute<T>(
    req: RouteRequest,
    attempt: (ctx: AttemptContext) => Promise<T>,
    options?: ExecuteOptions<T>,
  ): Promise<T> {
    return execute(this.#s, req, attempt, options);
  }

  // ---------------------------------------------------------------- snapshot (router/snapshot.ts)

  /** Everything a health page shows, keys masked. */
  snapshot(): RouterSnapshot {
    return snapshot(this.#s);
  }

  /** A short description, keys masked. */
  toJSON(): Record<string, unknown> {
    return { strategy: this.#s.strategyName, endpoints: this.endpoints.map((e) => e.toJSON()) };
  }
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
