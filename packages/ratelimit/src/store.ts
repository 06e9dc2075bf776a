import { ConfigError } from '@lb/core';
/** A value now, or later (a remote store). */
export type MaybePromise<T> = T | Promise<T>;

/** A token bucket's shape: how many tokens it holds at most, and how fast it refills. */
export interface BucketSpec {
  /** Most tokens the bucket holds (the burst). A missing bucket starts full. */
  readonly capacity: number;
  /** Tokens added per ms. */
  readonly refillPerMs: number;
}

/**
 * A bucket's live state in a synchronous store ({@link Store.cell}): the store updates this same object in place, so
 * its level at `now` is `refill(cell.tokens, cell.at, spec, now)` without a lookup. Deleting the key marks it `dead`.
 */
export interface BucketCell {
  /** Tokens at `at` (may be negative after a debt). */
  readonly tokens: number;
  /** Epoch ms of the last change (0: never changed, full). */
  readonly at: number;
  /** The key was deleted: this object is no longer the bucket's; ask the store for the cell again. */
  readonly dead: boolean;
}

/** What {@link Store.take} did. */
export interface TakeResult {
  /** The tokens were taken (false: not enough, nothing changed). */
  readonly ok: boolean;
  /** Tokens left afterwards (or now, when not taken). May be negative after a debt (see `adjust`). */
  readonly tokens: number;
}

/** "Do not send until `until`", and why. */
export interface Cooldown {
  /** Epoch ms. */
  readonly until: number;
  /** Human-readable, never a key. */
  readonly reason: string;
}

/** A window counter's shape (per-client limits). */
export interface WindowSpec {
  /** Requests allowed per window. */
  readonly limit: number;
  /** Window length, ms. */
  readonly windowMs: number;
  /** Sliding window (weighted previous window) rather than fixed. */
  readonly sliding: boolean;
}

/** What {@link Store.hit} decided. */
export interface WindowResult {
  readonly allowed: boolean;
  /** Requests counted in the window after this one (sliding: weighted estimate, rounded up). */
  readonly count: number;
  /** Epoch ms when the current window ends. */
  readonly resetAt: number;
  /** 0 when allowed; else ms until a request would be allowed. */
  readonly retryAfterMs: number;
}

/**
 * Where the rate limiter keeps its state: token buckets, cooldowns and window counters. Every method is one atomic
 * step (a remote store runs each as one script), so the limiter logic never changes with the store.
 *
 * The router's guards are synchronous. A store that answers synchronously (`synchronous: true`, like
 * {@link MemoryStore}) is used directly. Any other store (Redis, later) gets a synchronous local view in front of it:
 * decisions are made locally at once, every change is forwarded, and the store's answers correct the local view
 * (tighten budgets that other replicas used, adopt their cooldowns). Errors of a remote store never fail a request.
 *
 * Every implementation should pass the same contract as the memory store (see the package tests).
 *
 * @example
 * const store: Store = new MemoryStore();
 * store.take('lb:rl:a:rps', 1, { capacity: 5, refillPerMs: 5 / 1000 }, Date.now()); // { ok: true, tokens: 4 }
 */
export interface Store {
  /** True when every method returns its value synchronously (no local view needed). */
  readonly synchronous?: boolean;
  /** Tokens in bucket `key` at `now`, refilled lazily from timestamps. Reads only. */
  peek(key: string, spec: BucketSpec, now: number): MaybePromise<number>;
  /** Takes `cost` tokens if the bucket holds that many at `now`; changes nothing otherwise. */
  take(key: string, cost: number, spec: BucketSpec, now: number): MaybePromise<TakeResult>;
  /**
   * Adds `delta` tokens (negative: a debt, the bucket may go below zero), capped at capacity and floored at
   * `-capacity` (a debt never exceeds one bucketful, so a burst of late spends cannot black an endpoint out for
   * long). Returns the level.
   */
  adjust(key: string, delta: number, spec: BucketSpec, now: number): MaybePromise<number>;
  /** The cooldown of `key` still running at `now`, if any. */
  getCooldown(key: string, now: number): MaybePromise<Cooldown | undefined>;
  /** Sets a cooldown; an existing later one wins (cooldowns only ever extend). */
  setCooldown(key: string, cooldown: Cooldown): MaybePromise<void>;
  /** Counts one request in window `key` if the window allows it (denied requests are not counted). */
  hit(key: string, spec: WindowSpec, now: number): MaybePromise<WindowResult>;
  /**
   * Optional, for remote stores: counts `n` requests already admitted elsewhere (a local view's batch) whatever the
   * window holds, and says what a next request would get. A local view sends one `record` per window per flush
   * instead of one `hit` per request.
   */
  record?(key: string, spec: WindowSpec, now: number, n: number): MaybePromise<WindowResult>;
  /** Forgets a key of any kind (buckets, cooldowns, windows): an endpoint left the config, or a reset by hand. */
  delete(key: string): MaybePromise<void>;
  /**
   * Optional, synchronous stores only: bucket `key`'s live state, created full when missing, for a caller that reads
   * a level on every pick without a lookup (the rate limiter). Same level as `peek`.
   */
  cell?(key: string, spec: BucketSpec): BucketCell;
  /**
   * Optional, synchronous stores only: how many cooldowns the store holds, expired ones it has not dropped yet
   * included. 0 means `getCooldown` finds none, so a caller can skip the lookup.
   */
  readonly cooldowns?: number;
  /**
   * Optional, for remote stores: whether the store answers now, and how many replicas share it. A local view in front
   * of the store uses it to fall back to this replica's share of every budget while the store is degraded.
   */
  readonly health?: StoreHealth;
}

/** A remote store's state: `up` (answers within its command timeout) or `degraded` (errors, timeouts, away). */
export type StoreState = 'up' | 'degraded';

/** A change of a remote store's state, as {@link StoreHealth.onState} reports it (once per transition). */
export interface StoreStateChange {
  readonly from: StoreState;
  readonly to: StoreState;
  /** Why (the error or timeout that degraded it, or `answered again`). Never a URL or a key. */
  readonly reason: string;
  /** Replicas sharing the store (live heartbeats; the last count while degraded; or the configured count). */
  readonly replicas: number;
  /** Fraction of every shared budget this replica uses while degraded: 1 ÷ replicas. */
  readonly share: number;
  /** Epoch ms. */
  readonly at: number;
}

/** Round trips of a remote store's commands: a histogram in seconds (non-cumulative counts per upper bound). */
export interface StoreLatency {
  /** Upper bounds, seconds, ascending. */
  readonly bounds: readonly number[];
  /** Commands per bound (not cumulative); commands slower than the last bound are only in `count`. */
  readonly counts: readonly number[];
  /** Seconds, over every answered command. */
  readonly sum: number;
  /** Answered commands. */
  readonly count: number;
}

/** A snapshot of {@link StoreHealth}. */
export interface StoreStatus {
  readonly state: StoreState;
  /** Epoch ms of the last transition (or of the start). */
  readonly since: number;
  /** Why the store is in this state. */
  readonly reason: string;
  readonly replicas: number;
  /** 1 ÷ replicas: the fraction of each shared budget this replica uses while degraded. */
  readonly share: number;
  /** Commands that failed or timed out so far. */
  readonly errors: number;
  /** The command timeout, ms. */
  readonly commandTimeoutMs: number;
  readonly latency: StoreLatency;
}

/**
 * The health of a remote store: typed state changes for observers (logs, `/health`, metrics) and the replica count
 * a local view divides budgets by. Subscribing returns the unsubscribe.
 */
export interface StoreHealth {
  readonly state: StoreState;
  readonly replicas: number;
  status(): StoreStatus;
  onState(listener: (change: StoreStateChange) => void): () => void;
  /**
   * Optional: calls `listener` when the replica count changes (a heartbeat counted more or fewer), so a local view
   * re-splits its budgets before the next request rather than after its next spend. Returns the unsubscribe.
   */
  onReplicas?(listener: (replicas: number) => void): () => void;
}

/** A {@link Store} whose methods answer synchronously. */
export type SyncStore = {
  readonly synchronous: true;
  readonly health?: StoreHealth;
  record?(key: string, spec: WindowSpec, now: number, n: number): WindowResult;
  cell?(key: string, spec: BucketSpec): BucketCell;
  readonly cooldowns?: number;
} & {
  [K in Exclude<keyof Store, 'synchronous' | 'record' | 'cell' | 'cooldowns' | 'health'>]: Store[K] extends (
    ...a: infer A
  ) => MaybePromise<infer R>
    ? (...a: A) => R
    : never;
};

interface Bucket {
  tokens: number;
  at: number;
  dead: boolean;
}

interface Win {
  start: number;
  count: number;
  prev: number;
}

/** The level of a bucket at `now` (pure). Exported for stores that run the same arithmetic elsewhere. */
export function refill(tokens: number, at: number, spec: BucketSpec, now: number): number {
  if (now <= at) return tokens;
  const t = tokens + (now - at) * spec.refillPerMs;
  return Math.min(t, spec.capacity);
}

/**
 * The window arithmetic every store runs (pure, exported so a Redis script can mirror it): fixed windows aligned to
 * multiples of `windowMs`; the sliding window weighs the previous window by the part of it still inside the last
 * `windowMs` (Cloudflare's approximation: O(1) memory per key).
 */
export function windowDecision(
  state: { start: number; count: number; prev: number } | undefined,
  spec: WindowSpec,
  now: number,
): { state: { start: number; count: number; prev: number }; result: WindowResult } {
  const w = spec.windowMs;
  // `next` is a fresh object: it becomes the new state.
  const next = windowAt(state, w, now);
  const { start, prev, count } = next;
  const resetAt = start + w;
  const weight = spec.sliding ? (resetAt - now) / w : 0;
  const used = prev * weight + count;
  if (used + 1 <= spec.limit + 1e-9) {
    next.count = count + 1;
    return {
      state: next,
      result: { allowed: true, count: Math.ceil(prev * weight + count + 1 - 1e-9), resetAt, retryAfterMs: 0 },
    };
  }
  let retryAfterMs: number;
  const room = spec.limit - 1 - count;
  if (spec.sliding && room >= 0 && prev > 0) {
    // Later in this window the previous one weighs less: prev * (end - t) / w <= room.
    retryAfterMs = Math.max(1, Math.ceil(resetAt - (room * w) / prev - now));
  } else if (spec.sliding && count > 0) {
    // In the next window this one becomes `prev`: count * (1 - x / w) <= limit - 1.
    retryAfterMs = Math.max(1, Math.ceil(resetAt - now + w * (1 - (spec.limit - 1) / count)));
  } else retryAfterMs = Math.max(1, resetAt - now);
  return {
    state: next,
    result: { allowed: false, count: Math.ceil(used - 1e-9), resetAt, retryAfterMs },
  };
}

/**
 * {@link Store.record}'s arithmetic (pure): adds `n` to the current window, and the result is `windowDecision`'s for
 * a next request.
 */
export function windowRecord(
  state: { start: number; count: number; prev: number } | undefined,
  spec: WindowSpec,
  now: number,
  n: number,
): { state: { start: number; count: number; prev: number }; result: WindowResult } {
  const next = windowAt(state, spec.windowMs, now);
  next.count += n;
  return { state: next, result: windowDecision(next, spec, now).result };
}

/** The window `now` falls in, carrying over what `state` counted in it or in the one before (pure). */
function windowAt(
  state: { start: number; count: number; prev: number } | undefined,
  w: number,
  now: number,
): { start: number; count: number; prev: number } {
  const start = Math.floor(now / w) * w;
  if (state?.start === start) return { start, count: state.count, prev: state.prev };
  return { start, count: 0, prev: state?.start === start - w ? state.count : 0 };
}

/**
 * The default {@link Store}: in this process's memory, synchronous, no timers. Expired cooldowns and windows are
 * dropped lazily (a sweep every `sweepEvery` new windows), so millions of client keys do not pile up.
 *
 * @example
 * const store = new MemoryStore();
 * const limiter = createClientLimiter({ requests: 60, windowMs: 60_000, store });
 */
export class MemoryStore implements SyncStore {
  readonly synchronous = true as const;
  readonly #buckets = new Map<string, Bucket>();
  readonly #cooldowns = new Map<string, Cooldown>();
  readonly #windows = new Map<string, Win & { w: number }>();
  readonly #sweepEvery: number;
  #writes = 0;

  /** @param options.sweepEvery New windows between lazy sweeps of expired entries. Default 4096. */
  constructor(options: { sweepEvery?: number } = {}) {
    const s = options.sweepEvery ?? 4096;
    if (!Number.isInteger(s) || s < 1) {
      throw new ConfigError(`MemoryStore: sweepEvery must be an integer >= 1, received ${JSON.stringify(s)}`);
    }
    this.#sweepEvery = s;
  }

  /** Number of keys held (buckets, cooldowns, windows). */
  get size(): number {
    return this.#buckets.size + this.#cooldowns.size + this.#windows.size;
  }

  /** Cooldowns held (expired ones are dropped when `getCooldown` meets them, or by the sweep). */
  get cooldowns(): number {
    return this.#cooldowns.size;
  }

  cell(key: string, spec: BucketSpec): BucketCell {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      // `at` 0: full at any time, as a missing bucket is.
      b = { tokens: spec.capacity, at: 0, dead: false };
      this.#buckets.set(key, b);
    }
    return b;
  }

  peek(key: string, spec: BucketSpec, now: number): number {
    const b = this.#buckets.get(key);
    return b === undefined ? spec.capacity : refill(b.tokens, b.at, spec, now);
  }

  take(key: string, cost: number, spec: BucketSpec, now: number): TakeResult {
    const b = this.#bucket(key, spec, now);
    if (b.tokens < cost) return { ok: false, tokens: b.tokens };
    b.tokens -= cost;
    return { ok: true, tokens: b.tokens };
  }

  adjust(key: string, delta: number, spec: BucketSpec, now: number): number {
    const b = this.#bucket(key, spec, now);
    b.tokens = Math.max(-spec.capacity, Math.min(spec.capacity, b.tokens + delta));
    return b.tokens;
  }

  getCooldown(key: string, now: number): Cooldown | undefined {
    const c = this.#cooldowns.get(key);
    if (c === undefined || c.until > now) return c;
    // Over: drop it, so that `cooldowns` falls back to 0 and callers skip the lookup again.
    this.#cooldowns.delete(key);
    return undefined;
  }

  setCooldown(key: string, cooldown: Cooldown): void {
    const c = this.#cooldowns.get(key);
    if (c !== undefined && c.until >= cooldown.until) return;
    this.#cooldowns.set(key, { until: cooldown.until, reason: cooldown.reason });
  }

  hit(key: string, spec: WindowSpec, now: number): WindowResult {
    const cur = this.#windows.get(key);
    return this.#window(key, cur, spec, now, windowDecision(cur, spec, now));
  }

  record(key: string, spec: WindowSpec, now: number, n: number): WindowResult {
    const cur = this.#windows.get(key);
    return this.#window(key, cur, spec, now, windowRecord(cur, spec, now, n));
  }

  /** Stores a window's new state (`cur`: its entry, if any) and returns the decision's result. */
  #window(
    key: string,
    cur: (Win & { w: number }) | undefined,
    spec: WindowSpec,
    now: number,
    { state, result }: { state: { start: number; count: number; prev: number }; result: WindowResult },
  ): WindowResult {
    if (cur) {
      cur.start = state.start;
      cur.count = state.count;
      cur.prev = state.prev;
      cur.w = spec.windowMs;
    } else {
      this.#windows.set(key, { ...state, w: spec.windowMs });
      this.#wrote(now);
    }
    return result;
  }

  delete(key: string): void {
    const b = this.#buckets.get(key);
    if (b !== undefined) {
      b.dead = true;
      this.#buckets.delete(key);
    }
    this.#cooldowns.delete(key);
    this.#windows.delete(key);
  }

  #bucket(key: string, spec: BucketSpec, now: number): Bucket {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      b = { tokens: spec.capacity, at: now, dead: false };
      this.#buckets.set(key, b);
    } else {
      b.tokens = refill(b.tokens, b.at, spec, now);
      if (now > b.at) b.at = now;
    }
    return b;
  }

  #wrote(now: number): void {
    if (++this.#writes % this.#sweepEvery !== 0) return;
    for (const [k, c] of this.#cooldowns) if (c.until <= now) this.#cooldowns.delete(k);
    // A window two lengths old carries nothing into the current one.
    for (const [k, w] of this.#windows) if (w.start + 2 * w.w <= now) this.#windows.delete(k);
  }
}
