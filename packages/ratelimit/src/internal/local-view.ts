import {
  type BucketCell,
  type BucketSpec,
  type Cooldown,
  MemoryStore,
  type Store,
  type StoreHealth,
  type SyncStore,
  type TakeResult,
  type WindowResult,
  type WindowSpec,
} from '../store.js';

/**
 * What the rate limiters see of their store: synchronous methods, and with a remote store the local view's extras
 * (a spend names the local spec it is decided on and the shared spec it is sent with).
 */
export type ViewStore = SyncStore & {
  take(key: string, cost: number, spec: BucketSpec, now: number, shared?: BucketSpec): TakeResult;
  adjust(key: string, delta: number, spec: BucketSpec, now: number, shared?: BucketSpec): number;
  pull?(key: string, now: number): void;
  errors?: number;
  /** Sets a cooldown here only (a peer's, already in the shared store). */
  adopt?(key: string, cooldown: Cooldown): void;
  /** Brings a bucket within a new local spec (a share that shrank). */
  clamp?(key: string, spec: BucketSpec, now: number): void;
  /** Replicas sharing the store (1 without a remote store). */
  readonly replicas?: number;
  /** The remote store does not answer: decide on this replica's share alone. */
  readonly degraded?: boolean;
  /** Calls `fn` when `replicas` or `degraded` changed; returns the unsubscribe. */
  onShare?(fn: () => void): () => void;
};

/**
 * A synchronous view in front of a store that may answer later (a remote, shared one). Decisions are taken on the
 * local copy at once; every change is forwarded (bucket spends batched per bucket every `flushMs`); answers tighten
 * the local copy (budgets other replicas used, their cooldowns). A failing store never fails a request: errors are
 * counted and otherwise ignored.
 *
 * While the store's health says `degraded` (errors, timeouts, away), nothing is forwarded: spends count against this
 * replica's local share only (the limiter decides on limit ÷ replicas), and none lands on the shared budget later as
 * a debt. Windows allow limit ÷ replicas meanwhile.
 */
export class LocalView implements ViewStore {
  readonly synchronous = true as const;
  readonly local = new MemoryStore();
  readonly #remote: Store;
  readonly #syncMs: number;
  readonly #pulled = new Map<string, number>();
  readonly #flushMs: number;
  /** Tokens spent per bucket and not sent yet: sent together every `flushMs` (one store call per bucket). */
  #owed = new Map<string, Owed>();
  /** Tokens sent per bucket whose answer has not come yet (the shared level an answer tells does not count them). */
  readonly #inflight = new Map<string, number>();
  /** Requests admitted per window and not sent yet: sent with the bucket spends (`record`, or one `hit` each). */
  #hits = new Map<string, { n: number; spec: WindowSpec; now: number }>();
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #health: StoreHealth | undefined;
  #replicas = 1;
  #degraded = false;
  /** Window specs of this replica's share while degraded, by the shared spec. */
  readonly #shares = new Map<WindowSpec, WindowSpec>();
  readonly #listeners = new Set<() => void>();
  errors = 0;
  readonly #onError = () => {
    this.errors++;
  };

  constructor(remote: Store, syncMs: number, flushMs = 10) {
    this.#remote = remote;
    this.#syncMs = syncMs;
    this.#flushMs = flushMs;
    const h = remote.health;
    this.#health = h;
    if (h !== undefined) {
      this.#replicas = h.replicas;
      this.#degraded = h.state === 'degraded';
      // For the view's lifetime (the store's): the client limiter's windows follow the state too.
      h.onState(() => this.#sync());
      // A new count re-splits the budgets at once: an idle replica that learnt it only at its next flush would decide
      // the first spends of a burst on the whole budget.
      h.onReplicas?.(() => this.#sync());
    }
  }

  get health(): StoreHealth | undefined {
    return this.#health;
  }

  get replicas(): number {
    return this.#replicas;
  }

  get degraded(): boolean {
    return this.#degraded;
  }

  onShare(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => {
      this.#listeners.delete(fn);
    };
  }

  /** Takes the store's health and replica count; tells the limiters when either changed. */
  #sync(): void {
    const h = this.#health;
    if (h === undefined) return;
    const degraded = h.state === 'degraded';
    const replicas = h.replicas;
    if (degraded === this.#degraded && replicas === this.#replicas) return;
    if (degraded && !this.#degraded) {
      // Spends not sent yet stay local: they counted against this replica's share, not the shared budget.
      this.#owed.clear();
      this.#hits.clear();
    }
    this.#degraded = degraded;
    this.#replicas = replicas;
    this.#shares.clear();
    for (const fn of this.#listeners) {
      try {
        fn();
      } catch {
        this.errors++;
      }
    }
  }

  peek(key: string, spec: BucketSpec, now: number): number {
    return this.local.peek(key, spec, now);
  }

  /** The local copy's cell: spends and the shared level's corrections all change it in place. */
  cell(key: string, spec: BucketSpec): BucketCell {
    return this.local.cell(key, spec);
  }

  get cooldowns(): number {
    return this.local.cooldowns;
  }

  take(key: string, cost: number, spec: BucketSpec, now: number, shared = spec): TakeResult {
    const r = this.local.take(key, cost, spec, now);
    if (r.ok && !this.#degraded) this.#owe(key, cost, spec, shared, now);
    return r;
  }

  adjust(key: string, delta: number, spec: BucketSpec, now: number, shared = spec): number {
    if (!this.#degraded) this.#owe(key, -delta, spec, shared, now);
    return this.local.adjust(key, delta, spec, now);
  }

  clamp(key: string, spec: BucketSpec, now: number): void {
    this.local.adjust(key, 0, spec, now);
  }

  getCooldown(key: string, now: number): Cooldown | undefined {
    return this.local.getCooldown(key, now);
  }

  setCooldown(key: string, cooldown: Cooldown): void {
    this.local.setCooldown(key, cooldown);
    if (!this.#degraded) this.#later(this.#remote.setCooldown(key, cooldown));
  }

  adopt(key: string, cooldown: Cooldown): void {
    this.local.setCooldown(key, cooldown);
  }

  hit(key: string, spec: WindowSpec, now: number): WindowResult {
    const blocked = this.local.getCooldown(key, now);
    const degraded = this.#degraded;
    const r = blocked
      ? { allowed: false, count: spec.limit, resetAt: blocked.until, retryAfterMs: blocked.until - now }
      : this.local.hit(key, degraded ? this.#share(spec) : spec, now);
    if (r.allowed && !degraded) {
      const o = this.#hits.get(key);
      if (o === undefined) this.#hits.set(key, { n: 1, spec, now });
      else {
        o.n++;
        o.now = now;
      }
      this.#schedule();
    }
    return r;
  }

  /** A window of this replica's share of `spec` (limit ÷ replicas, at least 1). */
  #share(spec: WindowSpec): WindowSpec {
    if (this.#replicas <= 1) return spec;
    let s = this.#shares.get(spec);
    if (s === undefined) {
      s = { ...spec, limit: Math.max(1, Math.floor(spec.limit / this.#replicas)) };
      this.#shares.set(spec, s);
    }
    return s;
  }

  /** The shared window is full (other replicas): refuse locally until it frees up. */
  #adopt(key: string, now: number, remote: WindowResult): void {
    if (!remote.allowed)
      this.local.setCooldown(key, { until: now + remote.retryAfterMs, reason: 'shared window full' });
  }

  delete(key: string): void {
    this.local.delete(key);
    this.#pulled.delete(key);
    this.#owed.delete(key);
    this.#hits.delete(key);
    if (!this.#degraded) this.#later(this.#remote.delete(key));
  }

  /** Adopts the shared cooldown of `key` (other replicas' 429s), at most once per sync interval. */
  pull(key: string, now: number): void {
    if (this.#degraded) return;
    const last = this.#pulled.get(key);
    if (last !== undefined && now - last < this.#syncMs) return;
    this.#pulled.set(key, now);
    this.#later(this.#remote.getCooldown(key, now), (c) => {
      if (c) this.local.setCooldown(key, c);
    });
  }

  #owe(key: string, cost: number, spec: BucketSpec, shared: BucketSpec, now: number): void {
    const o = this.#owed.get(key);
    if (o === undefined) this.#owed.set(key, { cost, spec, shared, now });
    else {
      o.cost += cost;
      o.spec = spec;
      o.shared = shared;
      o.now = now;
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#flushTimer === undefined) {
      this.#flushTimer = setTimeout(this.#flush, this.#flushMs);
      (this.#flushTimer as { unref?: () => void }).unref?.();
    }
  }

  /**
   * Sends what each bucket spent since the last flush as one debt (`adjust`, which always applies: a `take` of the
   * sum could be refused whole and leave the spend unshared), then tightens the local bucket to the shared level
   * when other replicas spent more.
   */
  readonly #flush = (): void => {
    this.#flushTimer = undefined;
    // A new replica count (heartbeats) changes the shares: noticed here too when the health cannot tell it.
    if (this.#health !== undefined && this.#health.replicas !== this.#replicas) this.#sync();
    if (this.#degraded) return;
    const owed = this.#owed;
    this.#owed = new Map();
    for (const [key, o] of owed) {
      if (o.cost === 0) continue;
      this.#sending(key, o.cost);
      const done = () => this.#sending(key, -o.cost);
      this.#later(
        this.#remote.adjust(key, -o.cost, o.shared, o.now),
        (shared) => {
          done();
          this.#correct(key, o, shared);
        },
        done,
      );
    }
    const hits = this.#hits;
    this.#hits = new Map();
    const remote = this.#remote;
    for (const [key, h] of hits) {
      if (remote.record)
        this.#later(remote.record(key, h.spec, h.now, h.n), (r) => this.#adopt(key, h.now, r));
      else
        for (let i = 0; i < h.n; i++)
          this.#later(remote.hit(key, h.spec, h.now), (r) => this.#adopt(key, h.now, r));
    }
  };

  #sending(key: string, cost: number): void {
    const n = (this.#inflight.get(key) ?? 0) + cost;
    if (n === 0) this.#inflight.delete(key);
    else this.#inflight.set(key, n);
  }

  /**
   * Brings the local bucket to what the shared level `shared` (the answer to the spends `o`) leaves this replica. The
   * level counts this replica's spends up to `o` only: those still to be sent or still on the way come off it. Lower
   * than the local level: the local one drops to it (others spent). Higher, on a share (a bucket split N ways): each
   * of the other N - 1 replicas holds at most a share, so what the shared bucket has beyond their N - 1 shares is
   * free here (the local level rises to it, at most a share). A local level that rose to the shared one whole would
   * let each replica spend the same tokens again.
   */
  #correct(key: string, o: Owed, shared: number): void {
    const level = shared - (this.#inflight.get(key) ?? 0) - (this.#owed.get(key)?.cost ?? 0);
    const mine = this.local.peek(key, o.spec, o.now);
    let to = mine;
    if (level < mine) to = level;
    else if (this.#replicas > 1 && o.spec.capacity < o.shared.capacity) {
      const free = Math.min(o.spec.capacity, level - (this.#replicas - 1) * o.spec.capacity);
      if (free > mine) to = free;
    }
    if (to !== mine) this.local.adjust(key, to - mine, o.spec, o.now);
  }

  #later<T>(value: T | Promise<T>, then?: (v: T) => void, failed?: () => void): void {
    if (value !== null && typeof value === 'object' && typeof (value as Promise<T>).then === 'function') {
      const onError = failed
        ? () => {
            failed();
            this.#onError();
          }
        : this.#onError;
      (value as Promise<T>).then(then, onError).catch(this.#onError);
    } else if (then) {
      try {
        then(value as T);
      } catch {
        this.errors++;
      }
    }
  }
}

/** A bucket's spends not sent yet: the local spec they were decided on, the shared one they are sent with. */
interface Owed {
  cost: number;
  spec: BucketSpec;
  shared: BucketSpec;
  now: number;
}

/** The synchronous face of a store: itself when it is synchronous, a local view otherwise. */
export function syncView(store: Store, syncMs: number, flushMs?: number): ViewStore {
  return store.synchronous === true ? (store as ViewStore) : new LocalView(store, syncMs, flushMs);
}
