/**
 * The rate limiter: the guard the router asks at every pick (`admit`: a cooldown, then each budget, then the
 * tokens a request needs) and tells when an attempt starts (`acquire`: take from the buckets, charge the estimate),
 * and `attachRateLimit`, which wires it. Its parts: `limiter/options` (options, checks), `limiter/types` (public
 * types), `limiter/context` (what one limiter holds), `limiter/budgets` (an endpoint's buckets and shares),
 * `limiter/cooldowns` (cooldowns and peers), `limiter/upstream-headers` (`x-ratelimit-*` throttling),
 * `limiter/charges` (token estimates corrected), `limiter/listeners` (the bus), `limiter/queue` (the bounded wait),
 * `limiter/snapshot`.
 */
import { ConfigError, type Endpoint, type Guard, type RouteRequest, type Router, type Veto } from '@lb/core';
import { syncView } from './internal/local-view.js';
import { type EndpointState, forget, level, reshare, spent, stateOf } from './limiter/budgets.js';
import { MAX_CHARGES } from './limiter/charges.js';
import { LimiterContext } from './limiter/context.js';
import { cool, onPeer } from './limiter/cooldowns.js';
import { listen } from './limiter/listeners.js';
import { check, describe, type RateLimitOptions } from './limiter/options.js';
import { queuedExecute } from './limiter/queue.js';
import { snapshot } from './limiter/snapshot.js';
import type { RateLimitDescription, RateLimitHandle } from './limiter/types.js';
import { MemoryStore, type Store, type StoreHealth } from './store.js';

/**
 * Publishes a shared store's state changes on a router's bus (`store:state`), for observers that subscribe there.
 * {@link attachRateLimit} does it for its store; call it yourself for a store used without the limiter (a client
 * limiter alone). Returns the unsubscribe.
 */
export function publishStoreHealth(router: Router, health: StoreHealth): () => void {
  return health.onState((c) => router.publish('store:state', c));
}

/**
 * Attaches per-endpoint rate limits to a router as a guard: token buckets for requests per second (with burst),
 * per minute and tokens per minute; pre-emptive throttling from OpenAI's `x-ratelimit-*` headers; cooldowns from
 * upstream 429s kept in the {@link Store} (so replicas can share them). An endpoint out of budget is vetoed and the
 * router picks another; when every endpoint is out, the router waits up to its `maxWaitMs` for the earliest one and
 * then answers 429 with `retryAfterMs`. No timers: buckets refill lazily from timestamps.
 *
 * @example
 * const router = createRouter({ endpoints: [{ id: 'a', url, apiKey, limits: { rps: 5, burst: 10, tpm: 90_000 } }] });
 * const limits = attachRateLimit(router);
 * await router.execute({ model: 'gpt-4o', estimatedTokens: estimateTokens(body) }, attempt);
 * limits.snapshot().a.rps?.remaining;
 * limits.dispose();
 */
export function attachRateLimit(router: Router, options: RateLimitOptions = {}): RateLimitHandle {
  return new RateLimiter(router, options).handle;
}

class RateLimiter implements Guard {
  readonly name: string;
  /**
   * A pick hands `now` = 0 (no clock read) while no guard needs one: `admit` then decides from a lower bound and
   * reads the clock only when that bound refuses (see `admit`).
   */
  readonly usesNow = false;
  readonly handle: RateLimitHandle;
  readonly #k: LimiterContext;
  readonly #offs: (() => void)[] = [];

  constructor(router: Router, o: RateLimitOptions) {
    if (!router || typeof router.addGuard !== 'function' || typeof router.on !== 'function') {
      throw new ConfigError(`attachRateLimit: expected a Router, received ${describe(router)}`);
    }
    for (const k of ['limits', 'estimateTokens', 'now'] as const) {
      if (o[k] !== undefined && typeof o[k] !== 'function')
        throw new ConfigError(`attachRateLimit: ${k} must be a function, received ${describe(o[k])}`);
    }
    check('reserveRequests', o.reserveRequests, 0);
    check('reserveTokens', o.reserveTokens, 0);
    check('cooldownMs', o.cooldownMs, 0);
    check('maxCooldownMs', o.maxCooldownMs, 0);
    check('syncIntervalMs', o.syncIntervalMs, 0);
    check('flushIntervalMs', o.flushIntervalMs, 0);
    check('maxQueue', o.maxQueue, 0, true);
    const store: Store = o.store ?? new MemoryStore();
    for (const m of ['peek', 'take', 'adjust', 'getCooldown', 'setCooldown', 'hit', 'delete'] as const) {
      if (typeof (store as unknown as Record<string, unknown>)[m] !== 'function')
        throw new ConfigError(
          `attachRateLimit: store must implement Store (missing ${m}()), received ${describe(store)}`,
        );
    }
    this.name = o.name ?? 'ratelimit';
    if (
      o.peers !== undefined &&
      (typeof o.peers?.publish !== 'function' || typeof o.peers.subscribe !== 'function')
    )
      throw new ConfigError(
        `attachRateLimit: peers must be { publish(message), subscribe(onMessage) }, received ${describe(o.peers)}`,
      );
    const k = new LimiterContext(
      this.name,
      router,
      syncView(store, o.syncIntervalMs ?? 1000, o.flushIntervalMs ?? 10),
      o.peers,
      o.replicaId ?? `replica-${Math.random().toString(36).slice(2, 10)}`,
      o.limits ?? ((e) => e.limits),
      o.estimateTokens ?? ((r) => r.estimatedTokens ?? 0),
      o.headerThrottling ?? true,
      o.reserveRequests ?? 0,
      o.reserveTokens ?? 0,
      o.keyPrefix ?? 'lb:rl:',
      o.cooldownMs ?? 1000,
      o.maxCooldownMs ?? 600_000,
      o.maxQueue ?? 1000,
      o.now ?? router.config?.now ?? Date.now,
    );
    this.#k = k;
    k.guard = this;

    // Validate every current endpoint's limits now, naming the bad one.
    for (const ep of router.endpoints) stateOf(k, ep);
    k.strict = false;

    this.#offs.push(...listen(k));
    this.#offs.push(router.addGuard(this));
    // The store's health joins the router's bus: an observer subscribes to `store:state` there, not to the store.
    if (store.health !== undefined) this.#offs.push(publishStoreHealth(router, store.health));
    const onShare = k.store.onShare;
    if (onShare !== undefined) this.#offs.push(onShare.call(k.store, () => reshare(k)));
    const peers = k.peers;
    if (peers !== undefined) {
      const off = peers.subscribe((m) => onPeer(k, m));
      if (typeof off === 'function') this.#offs.push(off);
    }

    this.handle = {
      guard: this,
      snapshot: () => snapshot(k),
      reset: (id) => {
        if (id === undefined) for (const key of [...k.states.keys()]) forget(k, key);
        else forget(k, id);
      },
      get storeErrors() {
        return k.store.errors ?? 0;
      },
      get waiting() {
        return k.waiting;
      },
      execute: (request, attempt, opts) => queuedExecute(k, request, attempt, opts),
      dispose: () => {
        if (k.disposed) return;
        k.disposed = true;
        for (const off of this.#offs.splice(0)) off();
        k.charges.clear();
        k.slot.release();
      },
    };
  }

  // ------------------------------------------------------------ guard (hot path)

  /**
   * `now` = 0 (a pick that read no clock): the same checks at time 0 are a lower bound. Buckets then count only the
   * tokens they held at their last change (refills only add), and any stored cooldown or upstream budget still
   * counts. Whatever admits at 0 admits now, so a bucket with tokens left admits without a clock read (and without
   * the heap number `Date.now()` returns). When the bound refuses, the clock decides.
   */
  admit(endpoint: Endpoint, request: RouteRequest, now: number): true | Veto {
    const v = this.#decide(endpoint, request, now);
    return v === true || now !== 0 ? v : this.#decide(endpoint, request, this.#k.now());
  }

  #decide(endpoint: Endpoint, request: RouteRequest, now: number): true | Veto {
    const k = this.#k;
    const s = stateOf(k, endpoint);
    const store = k.store;
    // A store that counts its cooldowns and holds none: no lookup.
    if (store.cooldowns !== 0) {
      const cd = store.getCooldown(s.cooldownKey, now);
      if (cd !== undefined) return { reason: cd.reason, until: cd.until, rateLimited: true };
    }
    const { rps, rpm } = s;
    if (rps !== undefined && level(k, rps, now) < 1) return spent(k, rps, 1, now);
    if (rpm !== undefined && level(k, rpm, now) < 1) return spent(k, rpm, 1, now);
    // Tokens: an estimate of the request, against the tokens-per-minute bucket and the upstream's own budget.
    return s.tpm !== undefined || s.view.tokensResetAt > now ? this.#tokens(s, request, now) : true;
  }

  #tokens(s: EndpointState, request: RouteRequest, now: number): true | Veto {
    const k = this.#k;
    const cost = k.estimate(request);
    const tpm = s.tpm;
    if (tpm !== undefined) {
      const need = Math.max(1, Math.min(cost, tpm.local.capacity));
      if (level(k, tpm, now) < need) return spent(k, tpm, need, now);
    }
    const v = s.view;
    if (v.tokensResetAt > now && v.remainingTokens !== undefined && cost > 0) {
      if (v.remainingTokens - cost < k.reserveTokens)
        return {
          reason: `upstream token budget too low (${v.remainingTokens} left, ~${cost} needed)`,
          until: v.tokensResetAt,
          rateLimited: true,
        };
    }
    return true;
  }

  acquire(endpoint: Endpoint, request: RouteRequest, now: number, requestId: string): void {
    const k = this.#k;
    const s = stateOf(k, endpoint);
    const store = k.store;
    const { rps, rpm, tpm } = s;
    if (rps !== undefined) store.take(rps.key, 1, rps.local, now, rps.spec);
    if (rpm !== undefined) store.take(rpm.key, 1, rpm.local, now, rpm.spec);
    const v = s.view;
    let cost = 0;
    if (tpm !== undefined || v.tokensResetAt > now) {
      cost = k.estimate(request);
      if (tpm !== undefined) {
        const first = Math.min(cost, tpm.local.capacity);
        if (first > 0) store.take(tpm.key, first, tpm.local, now, tpm.spec);
        if (cost > first) store.adjust(tpm.key, first - cost, tpm.local, now, tpm.spec);
      }
      // Remember the charge so the response's usage (or a failure) can correct it.
      const ch = k.charges;
      if (ch.size >= MAX_CHARGES) ch.delete(ch.keys().next().value as string);
      ch.set(requestId, { endpointId: endpoint.id, tokens: cost });
    }
    if (v.requestsResetAt > now && v.remainingRequests !== undefined) {
      if (--v.remainingRequests <= k.reserveRequests)
        cool(k, s, v.requestsResetAt, `upstream request budget spent (x-ratelimit-remaining-requests)`);
    }
    if (v.tokensResetAt > now && v.remainingTokens !== undefined && cost > 0) {
      v.remainingTokens -= cost;
      if (v.remainingTokens <= k.reserveTokens)
        cool(k, s, v.tokensResetAt, `upstream token budget spent (x-ratelimit-remaining-tokens)`);
    }
    store.pull?.(s.cooldownKey, now);
  }

  describe(endpoint: Endpoint, now: number): RateLimitDescription {
    const k = this.#k;
    const s = stateOf(k, endpoint);
    const out: RateLimitDescription = {};
    if (s.rps) out.rps = Math.floor(level(k, s.rps, now));
    if (s.rpm) out.rpm = Math.floor(level(k, s.rpm, now));
    if (s.tpm) out.tpm = Math.floor(level(k, s.tpm, now));
    const cd = k.store.getCooldown(s.cooldownKey, now);
    if (cd) out.cooldownUntil = cd.until;
    return out;
  }
}
