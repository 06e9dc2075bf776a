import {
  type AttemptContext,
  ConfigError,
  type Endpoint,
  type ExecuteOptions,
  type Guard,
  getHeader,
  type HeadersLike,
  isNoHealthyEndpointError,
  parseDuration,
  type RouteRequest,
  type Router,
  type Usage,
  type Veto,
} from '@lb/core';
import { EndpointSlot } from '@lb/core/internal';
import { RateLimitedError } from './errors.js';
import { syncView, type ViewStore } from './internal/local-view.js';
import {
  type BucketCell,
  type BucketSpec,
  type Cooldown,
  MemoryStore,
  refill,
  type Store,
  type StoreHealth,
} from './store.js';

/**
 * A publish/subscribe channel between replicas (the same shape as `@lb/breaker`'s `BreakerPeers`): the limiter tells
 * the others of the cooldowns an upstream 429 (or its rate-limit headers) started, so they stop at once instead of
 * after one more request.
 */
export interface RateLimitPeers {
  /** Sends a message to every replica (this one included: its own are ignored). */
  publish(message: string): void;
  /** Calls `onMessage` with every message; returns the unsubscribe. */
  subscribe(onMessage: (message: string) => void, onSubscribed?: () => void): () => void;
}

/** A cooldown as it travels between replicas. */
interface CooldownMessage {
  v: 1;
  from: string;
  key: string;
  until: number;
  reason: string;
}

/** An endpoint's budgets (the shape of `EndpointConfig.limits`). */
export interface EndpointLimits {
  /** Requests per second. */
  rps?: number;
  /** Requests per minute. */
  rpm?: number;
  /** Tokens per minute (estimated before sending, corrected by the response's `usage`). */
  tpm?: number;
  /** Most requests sent at once within the per-second budget (the rps bucket's size). Default: `rps` (at least 1). */
  burst?: number;
}

/**
 * Options of {@link attachRateLimit}. Explicit options only: `@lb/config-env` maps the environment (per-endpoint
 * limits come from each endpoint's `limits`).
 */
export interface RateLimitOptions {
  /** Budgets of an endpoint. Default: `endpoint.limits` (`{ rps, rpm, tpm, burst }` from the config). */
  limits?: (endpoint: Endpoint) => EndpointLimits | undefined;
  /**
   * Read OpenAI's `x-ratelimit-remaining-requests` / `-tokens` and `x-ratelimit-reset-requests` / `-tokens` from
   * every response and stop sending to an endpoint before it answers 429. Default true.
   */
  headerThrottling?: boolean;
  /** Stop when the upstream's remaining requests fall to this many (kept for other clients of the key). Default 0. */
  reserveRequests?: number;
  /** Stop when the upstream's remaining tokens fall to this many. Default 0. */
  reserveTokens?: number;
  /**
   * Tokens a request will use, for `tpm` budgets and the upstream's token headers. Called at pick time: keep it
   * cheap. Default: `request.estimatedTokens ?? 0` (fill it with {@link estimateTokens} from the body).
   */
  estimateTokens?: (request: RouteRequest) => number;
  /** Where buckets and cooldowns live. Default: a new {@link MemoryStore}. Share one store to share budgets. */
  store?: Store;
  /** Prefix of every store key (namespaces several routers in one shared store). Default `lb:rl:`. */
  keyPrefix?: string;
  /** Cooldown after an upstream 429 without a retry time, ms. Default 1000. */
  cooldownMs?: number;
  /** Longest cooldown taken from headers or Retry-After, ms. Default 600000. */
  maxCooldownMs?: number;
  /** With a remote store: least time between reads of an endpoint's shared cooldown, ms. Default 1000. */
  syncIntervalMs?: number;
  /**
   * With a remote store: tokens spent are sent together, per bucket, this often (ms), instead of one store call per
   * request. Default 10.
   */
  flushIntervalMs?: number;
  /**
   * Most requests {@link RateLimitHandle.execute} lets wait for budget at once (the router waits up to its
   * `maxWaitMs` for the earliest endpoint); more are refused at once with a {@link RateLimitedError}. Default 1000.
   */
  maxQueue?: number;
  /** Name of the guard (in snapshots and veto reasons). Default `ratelimit`. */
  name?: string;
  /**
   * With a shared store: a channel to the other replicas (Redis pub/sub in lb-server). Cooldowns started here are
   * published on it and those of the others adopted at once. Default none (others read a cooldown from the store at
   * most every `syncIntervalMs`, after their next request).
   */
  peers?: RateLimitPeers;
  /** This replica's name on `peers` (its own messages are ignored). Default: random. */
  replicaId?: string;
  /** Clock for events, epoch ms. Default: the router's `now`, else `Date.now`. */
  now?: () => number;
}

/** One budget's state in a snapshot. */
export interface BudgetSnapshot {
  /** The configured limit per window. */
  limit: number;
  /** Size of the bucket (burst). */
  capacity: number;
  /** Whole tokens available now (negative: a debt from usage above the estimate). */
  remaining: number;
}

/** The limiter guard's `describe()` for health pages: whole tokens left per budget, and a cooldown's end. */
export type RateLimitDescription = {
  rps?: number;
  rpm?: number;
  tpm?: number;
  /** Epoch ms until which the endpoint gets nothing. */
  cooldownUntil?: number;
};

/**
 * Publishes a shared store's state changes on a router's bus (`store:state`), for observers that subscribe there.
 * {@link attachRateLimit} does it for its store; call it yourself for a store used without the limiter (a client
 * limiter alone). Returns the unsubscribe.
 */
export function publishStoreHealth(router: Router, health: StoreHealth): () => void {
  return health.onState((c) => router.publish('store:state', c));
}

/** What the limiter knows about one endpoint. Never a key. */
export interface RateLimitEndpointSnapshot {
  limits: EndpointLimits;
  rps: BudgetSnapshot | undefined;
  rpm: BudgetSnapshot | undefined;
  tpm: BudgetSnapshot | undefined;
  /** Epoch ms until which the endpoint gets nothing (upstream 429, or its headers said the budget is spent). */
  cooldownUntil: number | undefined;
  cooldownReason: string | undefined;
  /** The upstream's own view from its last `x-ratelimit-*` headers (counted down locally since). */
  upstream:
    | {
        remainingRequests: number | undefined;
        limitRequests: number | undefined;
        requestsResetAt: number | undefined;
        remainingTokens: number | undefined;
        limitTokens: number | undefined;
        tokensResetAt: number | undefined;
      }
    | undefined;
  /** The limiter admits a request now. */
  available: boolean;
  /** Why not, and until when. */
  reason: string | undefined;
  until: number | undefined;
}

/** What {@link attachRateLimit} returns. */
export interface RateLimitHandle {
  /** The guard registered on the router. */
  readonly guard: Guard;
  /** Budgets, cooldowns and upstream views per endpoint id (for health pages and `lb_ratelimit_remaining`). */
  snapshot(): Record<string, RateLimitEndpointSnapshot>;
  /** Refills an endpoint's buckets and clears its cooldown and header view (all endpoints without an id). */
  reset(endpointId?: string): void;
  /**
   * `router.execute` behind a bounded wait queue: when every endpoint is out of budget, at most `maxQueue` requests
   * wait (for up to the router's `maxWaitMs`); the others, and those whose wait ends without budget, get a
   * {@link RateLimitedError} (429) carrying the earliest retry time.
   *
   * @example
   * try { await limits.execute({ model }, attempt) } catch (e) { if (isRateLimitedError(e)) reply429(e.retryAfterMs) }
   */
  execute<T>(
    request: RouteRequest,
    attempt: (ctx: AttemptContext) => Promise<T>,
    options?: ExecuteOptions<T>,
  ): Promise<T>;
  /** Requests waiting for budget in {@link RateLimitHandle.execute} now. */
  readonly waiting: number;
  /** Errors of a remote store so far (ignored otherwise: a store outage never fails a request). */
  readonly storeErrors: number;
  /** Detaches the guard and every listener. Idempotent. */
  dispose(): void;
}

interface View {
  remainingRequests: number | undefined;
  limitRequests: number | undefined;
  requestsResetAt: number;
  remainingTokens: number | undefined;
  limitTokens: number | undefined;
  tokensResetAt: number;
}

interface EpState {
  endpoint: Endpoint;
  limits: EndpointLimits;
  rps: Budget | undefined;
  rpm: Budget | undefined;
  tpm: Budget | undefined;
  cooldownKey: string;
  /** Every store key of the endpoint (whichever budgets it has now), for `reset` and removal. */
  keys: readonly string[];
  view: View;
}

/** One of an endpoint's token buckets. */
interface Budget {
  /** The shared budget's shape (what the store is told). */
  readonly spec: BucketSpec;
  /**
   * The shape this replica decides on: `spec` alone; with a store shared by N replicas, the per-second budget (burst
   * and rate) split N ways, and while the store is degraded every budget split N ways.
   */
  local: BucketSpec;
  readonly kind: 'rps' | 'rpm' | 'tpm';
  readonly key: string;
  /** The veto's reason when it is spent. */
  readonly reason: string;
  /** The store's live state of the bucket (stores with `cell`): a pick reads its level without a lookup. */
  cell: BucketCell | undefined;
}

interface Charge {
  endpointId: string;
  tokens: number;
}

const MAX_CHARGES = 10_000;

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

function check(name: string, v: unknown, min: number, integer = false): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new ConfigError(
      `attachRateLimit: ${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, received ${JSON.stringify(v)}`,
    );
  }
}

class RateLimiter implements Guard {
  readonly name: string;
  /**
   * A pick hands `now` = 0 (no clock read) while no guard needs one: `admit` then decides from a lower bound and
   * reads the clock only when that bound refuses (see `admit`).
   */
  readonly usesNow = false;
  readonly handle: RateLimitHandle;
  readonly #router: Router;
  readonly #store: ViewStore;
  readonly #peers: RateLimitPeers | undefined;
  readonly #replicaId: string;
  readonly #states = new Map<string, EpState>();
  /** The same states on the endpoint objects: two array reads on the hot path instead of the id map's lookup. */
  readonly #slot = new EndpointSlot<EpState>();
  readonly #charges = new Map<string, Charge>();
  readonly #limits: (endpoint: Endpoint) => EndpointLimits | undefined;
  readonly #estimate: (request: RouteRequest) => number;
  readonly #headers: boolean;
  readonly #reserveRequests: number;
  readonly #reserveTokens: number;
  readonly #prefix: string;
  readonly #cooldownMs: number;
  readonly #maxCooldownMs: number;
  readonly #now: () => number;
  readonly #offs: (() => void)[] = [];
  #disposed = false;
  readonly #maxQueue: number;
  #waiting = 0;
  #strict = true;

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
    this.#router = router;
    this.name = o.name ?? 'ratelimit';
    if (
      o.peers !== undefined &&
      (typeof o.peers?.publish !== 'function' || typeof o.peers.subscribe !== 'function')
    )
      throw new ConfigError(
        `attachRateLimit: peers must be { publish(message), subscribe(onMessage) }, received ${describe(o.peers)}`,
      );
    this.#store = syncView(store, o.syncIntervalMs ?? 1000, o.flushIntervalMs ?? 10);
    this.#peers = o.peers;
    this.#replicaId = o.replicaId ?? `replica-${Math.random().toString(36).slice(2, 10)}`;
    this.#limits = o.limits ?? ((e) => e.limits);
    this.#estimate = o.estimateTokens ?? ((r) => r.estimatedTokens ?? 0);
    this.#headers = o.headerThrottling ?? true;
    this.#reserveRequests = o.reserveRequests ?? 0;
    this.#reserveTokens = o.reserveTokens ?? 0;
    this.#prefix = o.keyPrefix ?? 'lb:rl:';
    this.#cooldownMs = o.cooldownMs ?? 1000;
    this.#maxQueue = o.maxQueue ?? 1000;
    this.#maxCooldownMs = o.maxCooldownMs ?? 600_000;
    const routerNow = router.config?.now;
    this.#now = o.now ?? routerNow ?? Date.now;

    // Validate every current endpoint's limits now, naming the bad one.
    for (const ep of router.endpoints) this.#state(ep);
    this.#strict = false;

    this.#offs.push(
      // Enabled by hand: a hand outranks a learned 429 cooldown (budgets stay as they are).
      router.on('endpoint:override', (e) => {
        if (!e.healthy) return;
        const st = this.#states.get(e.endpointId);
        if (st !== undefined) this.#store.delete(st.cooldownKey);
      }),
      router.on('attempt:success', (e) => {
        if (e.headers !== undefined && this.#headers) this.#observe(e.endpoint, e.headers);
      }),
      router.on('attempt:failure', (e) => {
        const now = this.#now();
        const c = this.#charges.get(e.requestId);
        if (c !== undefined && c.endpointId === e.endpointId) {
          // A failed attempt used no tokens: give the estimate back.
          this.#charges.delete(e.requestId);
          if (c.tokens > 0) this.#correct(e.endpoint, -c.tokens, now);
        }
        if (e.headers !== undefined && this.#headers) this.#observe(e.endpoint, e.headers);
        if (e.kind === 'rate-limit') {
          const ms = Math.min(e.retryAfterMs ?? this.#cooldownMs, this.#maxCooldownMs);
          const s = this.#state(e.endpoint);
          this.#setCooldown(s, {
            until: now + ms,
            reason: `upstream answered 429, cooling down ${Math.round(ms)} ms`,
          });
        }
      }),
      router.on('attempt:usage', (e) => {
        const c = this.#charges.get(e.requestId);
        if (c === undefined || c.endpointId !== e.endpointId) return;
        this.#charges.delete(e.requestId);
        const used = usedTokens(e.usage);
        if (used !== undefined) this.#correct(e.endpoint, used - c.tokens, this.#now());
      }),
      router.on('config:reloaded', (e) => {
        for (const id of e.removed) this.#forget(id);
      }),
    );
    this.#offs.push(router.addGuard(this));
    // The store's health joins the router's bus: an observer subscribes to `store:state` there, not to the store.
    if (store.health !== undefined) this.#offs.push(publishStoreHealth(router, store.health));
    const onShare = this.#store.onShare;
    if (onShare !== undefined) this.#offs.push(onShare.call(this.#store, () => this.#reshare()));
    const peers = this.#peers;
    if (peers !== undefined) {
      const off = peers.subscribe((m) => this.#onPeer(m));
      if (typeof off === 'function') this.#offs.push(off);
    }

    const self = this;
    this.handle = {
      guard: this,
      snapshot: () => this.#snapshot(),
      reset: (id) => {
        if (id === undefined) for (const k of [...this.#states.keys()]) this.#forget(k);
        else this.#forget(id);
      },
      get storeErrors() {
        return self.#store.errors ?? 0;
      },
      get waiting() {
        return self.#waiting;
      },
      execute: (request, attempt, opts) => this.#execute(request, attempt, opts),
      dispose: () => {
        if (this.#disposed) return;
        this.#disposed = true;
        for (const off of this.#offs.splice(0)) off();
        this.#charges.clear();
        this.#slot.release();
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
    return v === true || now !== 0 ? v : this.#decide(endpoint, request, this.#now());
  }

  #decide(endpoint: Endpoint, request: RouteRequest, now: number): true | Veto {
    const s = this.#state(endpoint);
    const store = this.#store;
    // A store that counts its cooldowns and holds none: no lookup.
    if (store.cooldowns !== 0) {
      const cd = store.getCooldown(s.cooldownKey, now);
      if (cd !== undefined) return { reason: cd.reason, until: cd.until, rateLimited: true };
    }
    const { rps, rpm } = s;
    if (rps !== undefined && this.#level(rps, now) < 1) return this.#spent(rps, 1, now);
    if (rpm !== undefined && this.#level(rpm, now) < 1) return this.#spent(rpm, 1, now);
    // Tokens: an estimate of the request, against the tokens-per-minute bucket and the upstream's own budget.
    return s.tpm !== undefined || s.view.tokensResetAt > now ? this.#tokens(s, request, now) : true;
  }

  /** Tokens in a bucket at `now`: from the store's cell when it gives one (no lookup), else `peek`. */
  #level(b: Budget, now: number): number {
    let c = b.cell;
    if (c === undefined) return this.#store.peek(b.key, b.local, now);
    if (c.dead) c = b.cell = this.#store.cell?.(b.key, b.local) as BucketCell;
    return refill(c.tokens, c.at, b.local, now);
  }

  /** The veto of a bucket holding fewer than `need` tokens at `now`: until it holds them. */
  #spent(b: Budget, need: number, now: number): Veto {
    const t = this.#level(b, now);
    return { reason: b.reason, until: now + Math.ceil((need - t) / b.local.refillPerMs), rateLimited: true };
  }

  #tokens(s: EpState, request: RouteRequest, now: number): true | Veto {
    const cost = this.#estimate(request);
    const tpm = s.tpm;
    if (tpm !== undefined) {
      const need = Math.max(1, Math.min(cost, tpm.local.capacity));
      if (this.#level(tpm, now) < need) return this.#spent(tpm, need, now);
    }
    const v = s.view;
    if (v.tokensResetAt > now && v.remainingTokens !== undefined && cost > 0) {
      if (v.remainingTokens - cost < this.#reserveTokens)
        return {
          reason: `upstream token budget too low (${v.remainingTokens} left, ~${cost} needed)`,
          until: v.tokensResetAt,
          rateLimited: true,
        };
    }
    return true;
  }

  acquire(endpoint: Endpoint, request: RouteRequest, now: number, requestId: string): void {
    const s = this.#state(endpoint);
    const store = this.#store;
    const { rps, rpm, tpm } = s;
    if (rps !== undefined) store.take(rps.key, 1, rps.local, now, rps.spec);
    if (rpm !== undefined) store.take(rpm.key, 1, rpm.local, now, rpm.spec);
    const v = s.view;
    let cost = 0;
    if (tpm !== undefined || v.tokensResetAt > now) {
      cost = this.#estimate(request);
      if (tpm !== undefined) {
        const first = Math.min(cost, tpm.local.capacity);
        if (first > 0) store.take(tpm.key, first, tpm.local, now, tpm.spec);
        if (cost > first) store.adjust(tpm.key, first - cost, tpm.local, now, tpm.spec);
      }
      // Remember the charge so the response's usage (or a failure) can correct it.
      const ch = this.#charges;
      if (ch.size >= MAX_CHARGES) ch.delete(ch.keys().next().value as string);
      ch.set(requestId, { endpointId: endpoint.id, tokens: cost });
    }
    if (v.requestsResetAt > now && v.remainingRequests !== undefined) {
      if (--v.remainingRequests <= this.#reserveRequests)
        this.#cool(s, v.requestsResetAt, `upstream request budget spent (x-ratelimit-remaining-requests)`);
    }
    if (v.tokensResetAt > now && v.remainingTokens !== undefined && cost > 0) {
      v.remainingTokens -= cost;
      if (v.remainingTokens <= this.#reserveTokens)
        this.#cool(s, v.tokensResetAt, `upstream token budget spent (x-ratelimit-remaining-tokens)`);
    }
    store.pull?.(s.cooldownKey, now);
  }

  describe(endpoint: Endpoint, now: number): RateLimitDescription {
    const s = this.#state(endpoint);
    const out: RateLimitDescription = {};
    if (s.rps) out.rps = Math.floor(this.#level(s.rps, now));
    if (s.rpm) out.rpm = Math.floor(this.#level(s.rpm, now));
    if (s.tpm) out.tpm = Math.floor(this.#level(s.tpm, now));
    const cd = this.#store.getCooldown(s.cooldownKey, now);
    if (cd) out.cooldownUntil = cd.until;
    return out;
  }

  // ------------------------------------------------------------ bounded queue

  async #execute<T>(
    request: RouteRequest,
    attempt: (ctx: AttemptContext) => Promise<T>,
    options: ExecuteOptions<T> | undefined,
  ): Promise<T> {
    const router = this.#router;
    // Something can serve now: no queue at all.
    if (router.pick(request) !== undefined) return this.#run(request, attempt, options);
    if (this.#waiting >= this.#maxQueue) {
      const now = this.#now();
      const until = this.#earliest(request, now);
      throw new RateLimitedError(
        `Rate limit reached on every endpoint and ${this.#waiting} requests already wait${
          until === undefined ? '' : `; try again in ${Math.max(0, until - now)} ms`
        }`,
        { scope: 'queue', retryAfterMs: until === undefined ? 1000 : until - now },
      );
    }
    this.#waiting++;
    try {
      return await this.#run(request, attempt, options);
    } finally {
      this.#waiting--;
    }
  }

  async #run<T>(
    request: RouteRequest,
    attempt: (ctx: AttemptContext) => Promise<T>,
    options: ExecuteOptions<T> | undefined,
  ): Promise<T> {
    try {
      return await this.#router.execute(request, attempt, options);
    } catch (e) {
      // Refused before any attempt because every endpoint was out of budget: say so plainly.
      if (isNoHealthyEndpointError(e) && e.status === 429 && e.attempts.length === 0) {
        throw new RateLimitedError(e.message, {
          scope: 'endpoint',
          retryAfterMs: e.retryAfterMs ?? 1000,
          cause: e,
        });
      }
      throw e;
    }
  }

  /** Earliest time one of the request's endpoints admits again, by this limiter's account. */
  #earliest(request: RouteRequest, now: number): number | undefined {
    let best: number | undefined;
    for (const ep of this.#router.endpoints) {
      if (!ep.serves(request.model)) continue;
      const v = this.admit(ep, request, now);
      if (v === true) return now;
      if (v.until !== undefined && (best === undefined || v.until < best)) best = v.until;
    }
    return best;
  }

  // ------------------------------------------------------------ internals

  #state(endpoint: Endpoint): EpState {
    const hit = this.#slot.get(endpoint);
    if (hit !== undefined) return hit;
    const s = this.#states.get(endpoint.id);
    if (s !== undefined && s.endpoint === endpoint) {
      this.#slot.set(endpoint, s);
      return s;
    }
    // New endpoint, or a reload replaced it: derive the specs again (keeping bucket levels and the header view).
    const fresh = this.#build(endpoint, s?.view);
    this.#states.set(endpoint.id, fresh);
    this.#slot.set(endpoint, fresh);
    return fresh;
  }

  #build(endpoint: Endpoint, view: View | undefined): EpState {
    const raw = this.#limits(endpoint) ?? {};
    const bad: (keyof EndpointLimits)[] = [];
    const where = `endpoint ${JSON.stringify(endpoint.id)} limits`;
    for (const k of ['rps', 'rpm', 'tpm', 'burst'] as const) {
      const v = raw[k];
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)) {
        const msg = `attachRateLimit: ${where}.${k} must be a number > 0, received ${JSON.stringify(v)}`;
        // At attach time a bad limit is an error; an endpoint reloaded later with one runs without that limit.
        if (this.#strict) throw new ConfigError(msg);
        bad.push(k);
      }
    }
    const limits: EndpointLimits = { ...raw };
    for (const k of bad) delete limits[k];
    const base = `${this.#prefix}${endpoint.id}:`;
    const budget = (kind: Budget['kind'], capacity: number, perMs: number, reason: string): Budget => {
      const spec = { capacity, refillPerMs: perMs };
      const key = base + kind;
      const local = this.#localSpec(kind, spec);
      return { spec, local, kind, key, reason, cell: this.#store.cell?.(key, local) };
    };
    const { rps, rpm, tpm, burst } = limits;
    return {
      endpoint,
      limits,
      rps:
        rps === undefined
          ? undefined
          : budget(
              'rps',
              Math.max(1, burst ?? rps),
              rps / 1000,
              `over ${rps} requests/s (burst ${Math.max(1, burst ?? rps)})`,
            ),
      rpm:
        rpm === undefined
          ? undefined
          : budget('rpm', Math.max(1, rpm), rpm / 60_000, `over ${rpm} requests/min`),
      tpm: tpm === undefined ? undefined : budget('tpm', tpm, tpm / 60_000, `over ${tpm} tokens/min`),
      cooldownKey: `${base}cooldown`,
      keys: [`${base}rps`, `${base}rpm`, `${base}tpm`, `${base}cooldown`],
      view: view ?? {
        remainingRequests: undefined,
        limitRequests: undefined,
        requestsResetAt: 0,
        remainingTokens: undefined,
        limitTokens: undefined,
        tokensResetAt: 0,
      },
    };
  }

  #forget(id: string): void {
    const s = this.#states.get(id);
    if (s === undefined) return;
    this.#states.delete(id);
    this.#slot.set(s.endpoint, undefined);
    for (const k of s.keys) this.#store.delete(k);
  }

  #cool(s: EpState, until: number, reason: string): void {
    const now = this.#now();
    this.#setCooldown(s, { until: Math.min(until, now + this.#maxCooldownMs), reason });
  }

  /**
   * A cooldown begins (or is adopted from a peer): published on the router's bus as a typed `guard:state` change
   * (`ready` → `cooling`) when the endpoint was not cooling already. It ends at `until` without another event.
   */
  #announce(s: EpState, cooldown: Cooldown): void {
    if (this.#store.getCooldown(s.cooldownKey, this.#now()) !== undefined) return;
    this.#router.publish('guard:state', {
      kind: 'cooldown',
      guard: this.name,
      endpointId: s.endpoint.id,
      from: 'ready',
      to: 'cooling',
      reason: cooldown.reason,
      until: cooldown.until,
    });
  }

  /** Stores a cooldown and tells the other replicas at once (`peers`). */
  #setCooldown(s: EpState, cooldown: Cooldown): void {
    const key = s.cooldownKey;
    this.#announce(s, cooldown);
    this.#store.setCooldown(key, cooldown);
    const peers = this.#peers;
    if (peers === undefined) return;
    const m: CooldownMessage = {
      v: 1,
      from: this.#replicaId,
      key,
      until: cooldown.until,
      reason: cooldown.reason,
    };
    try {
      peers.publish(JSON.stringify(m));
    } catch {
      // A lost message only delays the others: they still read the cooldown from the store after a request.
    }
  }

  /** A cooldown another replica started: adopted here at once, for an endpoint this limiter knows. */
  #onPeer(raw: unknown): void {
    if (this.#disposed || typeof raw !== 'string') return;
    let m: Partial<CooldownMessage>;
    try {
      m = JSON.parse(raw) as Partial<CooldownMessage>;
    } catch {
      return;
    }
    if (m?.v !== 1 || m.from === this.#replicaId || typeof m.key !== 'string') return;
    if (typeof m.until !== 'number' || !Number.isFinite(m.until) || typeof m.reason !== 'string') return;
    for (const s of this.#states.values()) {
      if (s.cooldownKey !== m.key) continue;
      const until = Math.min(m.until, this.#now() + this.#maxCooldownMs);
      const cd = { until, reason: m.reason.slice(0, 200) };
      this.#announce(s, cd);
      if (this.#store.adopt) this.#store.adopt(m.key, cd);
      else this.#store.setCooldown(m.key, cd);
      return;
    }
  }

  /**
   * The shape a replica decides a budget on. Alone (or on an in-memory store): the budget itself. With a store shared
   * by N replicas, the per-second budget is split N ways, burst and rate: the N shares add up to the shared bucket, so
   * N replicas that start together send the burst once, not N times, and none spends what another refilled. The
   * shared level moves each share (down when others spent, up to what the others' shares leave free when they did
   * not), so a replica with all the traffic still gets the whole rate. The minute budgets stay whole (the shared
   * level corrects each replica). While the store is degraded, each replica keeps to its share of every budget.
   */
  #localSpec(kind: Budget['kind'], spec: BucketSpec): BucketSpec {
    const store = this.#store;
    const n = store.replicas ?? 1;
    if (n <= 1) return spec;
    if (store.degraded !== true && kind !== 'rps') return spec;
    return { capacity: Math.max(1, spec.capacity / n), refillPerMs: spec.refillPerMs / n };
  }

  /** The store's state or replica count changed: every budget takes its new local shape. */
  #reshare(): void {
    const now = this.#now();
    for (const s of this.#states.values()) {
      for (const b of [s.rps, s.rpm, s.tpm]) {
        if (b === undefined) continue;
        b.local = this.#localSpec(b.kind, b.spec);
        this.#store.clamp?.(b.key, b.local, now);
      }
    }
  }

  /** Charges `delta` more tokens (negative: a refund) to the endpoint's token budgets. */
  #correct(endpoint: Endpoint, delta: number, now: number): void {
    if (delta === 0) return;
    const s = this.#state(endpoint);
    if (s.tpm !== undefined) this.#store.adjust(s.tpm.key, -delta, s.tpm.local, now, s.tpm.spec);
    const v = s.view;
    if (v.tokensResetAt > now && v.remainingTokens !== undefined) v.remainingTokens -= delta;
  }

  #observe(endpoint: Endpoint, headers: HeadersLike): void {
    const rr = getHeader(headers, 'x-ratelimit-remaining-requests');
    const rt = getHeader(headers, 'x-ratelimit-remaining-tokens');
    if (rr === undefined && rt === undefined) return;
    const now = this.#now();
    const s = this.#state(endpoint);
    const v = s.view;
    if (rr !== undefined) {
      const n = Number(rr);
      if (rr.trim() !== '' && Number.isFinite(n)) {
        const reset = this.#resetMs(getHeader(headers, 'x-ratelimit-reset-requests'));
        v.remainingRequests = n;
        v.requestsResetAt = now + reset;
        const lim = Number(getHeader(headers, 'x-ratelimit-limit-requests'));
        if (Number.isFinite(lim) && lim > 0) v.limitRequests = lim;
        if (n <= this.#reserveRequests)
          this.#cool(
            s,
            v.requestsResetAt,
            `upstream request budget spent (x-ratelimit-remaining-requests: ${n})`,
          );
      }
    }
    if (rt !== undefined) {
      const n = Number(rt);
      if (rt.trim() !== '' && Number.isFinite(n)) {
        const reset = this.#resetMs(getHeader(headers, 'x-ratelimit-reset-tokens'));
        v.remainingTokens = n;
        v.tokensResetAt = now + reset;
        const lim = Number(getHeader(headers, 'x-ratelimit-limit-tokens'));
        if (Number.isFinite(lim) && lim > 0) v.limitTokens = lim;
        if (n <= this.#reserveTokens)
          this.#cool(s, v.tokensResetAt, `upstream token budget spent (x-ratelimit-remaining-tokens: ${n})`);
      }
    }
  }

  #resetMs(text: string | undefined): number {
    const ms = parseDuration(text);
    // Without a reset time, trust the remaining count for a second.
    return Math.min(ms ?? 1000, this.#maxCooldownMs);
  }

  #snapshot(): Record<string, RateLimitEndpointSnapshot> {
    const now = this.#now();
    const out: Record<string, RateLimitEndpointSnapshot> = {};
    const store = this.#store;
    for (const ep of this.#router.endpoints) {
      const s = this.#state(ep);
      const budget = (b: Budget | undefined, limit: number | undefined) =>
        b === undefined || limit === undefined
          ? undefined
          : { limit, capacity: b.local.capacity, remaining: Math.floor(this.#level(b, now)) };
      const cd = store.getCooldown(s.cooldownKey, now);
      const v = s.view;
      const live = v.requestsResetAt > now || v.tokensResetAt > now;
      const verdict = this.admit(ep, EMPTY, now);
      out[ep.id] = {
        limits: { ...s.limits },
        rps: budget(s.rps, s.limits.rps),
        rpm: budget(s.rpm, s.limits.rpm),
        tpm: budget(s.tpm, s.limits.tpm),
        cooldownUntil: cd?.until,
        cooldownReason: cd?.reason,
        upstream: live
          ? {
              remainingRequests: v.requestsResetAt > now ? v.remainingRequests : undefined,
              limitRequests: v.limitRequests,
              requestsResetAt: v.requestsResetAt > now ? v.requestsResetAt : undefined,
              remainingTokens: v.tokensResetAt > now ? v.remainingTokens : undefined,
              limitTokens: v.limitTokens,
              tokensResetAt: v.tokensResetAt > now ? v.tokensResetAt : undefined,
            }
          : undefined,
        available: verdict === true,
        reason: verdict === true ? undefined : verdict.reason,
        until: verdict === true ? undefined : verdict.until,
      };
    }
    return out;
  }
}

const EMPTY: RouteRequest = Object.freeze({});

function usedTokens(u: Usage): number | undefined {
  if (typeof u.total_tokens === 'number') return u.total_tokens;
  if (typeof u.prompt_tokens === 'number' || typeof u.completion_tokens === 'number')
    return (u.prompt_tokens ?? 0) + (u.completion_tokens ?? 0);
  return undefined;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object')
    return Array.isArray(v) ? 'an array' : `an object (${Object.keys(v).slice(0, 5).join(', ')})`;
  return JSON.stringify(v) ?? String(v);
}
