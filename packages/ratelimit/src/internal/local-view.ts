import {
  type BucketCell,
  type BucketSpec,
  type Cooldown,
  MemoryStore,
  type Store,
  type SyncStore,
  type TakeResult,
  type WindowResult,
  type WindowSpec,
} from '../store.js';

/**
 * A synchronous view in front of a store that may answer later (a remote, shared one). Decisions are taken on the
 * local copy at once; every change is forwarded (bucket spends batched per bucket every `flushMs`); answers tighten
 * the local copy (budgets other replicas used, their cooldowns). A failing store never fails a request: errors are
 * counted and otherwise ignored.
 */
export class LocalView implements SyncStore {
  readonly synchronous = true as const;
  readonly local = new MemoryStore();
  readonly #remote: Store;
  readonly #syncMs: number;
  readonly #pulled = new Map<string, number>();
  readonly #flushMs: number;
  /** Tokens spent per bucket and not sent yet: sent together every `flushMs` (one store call per bucket). */
  #owed = new Map<string, { cost: number; spec: BucketSpec; now: number }>();
  /** Requests admitted per window and not sent yet: sent with the bucket spends (`record`, or one `hit` each). */
  #hits = new Map<string, { n: number; spec: WindowSpec; now: number }>();
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  errors = 0;
  readonly #onError = () => {
    this.errors++;
  };

  constructor(remote: Store, syncMs: number, flushMs = 10) {
    this.#remote = remote;
    this.#syncMs = syncMs;
    this.#flushMs = flushMs;
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

  take(key: string, cost: number, spec: BucketSpec, now: number): TakeResult {
    const r = this.local.take(key, cost, spec, now);
    if (r.ok) this.#owe(key, cost, spec, now);
    return r;
  }

  adjust(key: string, delta: number, spec: BucketSpec, now: number): number {
    this.#owe(key, -delta, spec, now);
    return this.local.adjust(key, delta, spec, now);
  }

  getCooldown(key: string, now: number): Cooldown | undefined {
    return this.local.getCooldown(key, now);
  }

  setCooldown(key: string, cooldown: Cooldown): void {
    this.local.setCooldown(key, cooldown);
    this.#later(this.#remote.setCooldown(key, cooldown));
  }

  hit(key: string, spec: WindowSpec, now: number): WindowResult {
    const blocked = this.local.getCooldown(key, now);
    const r = blocked
      ? { allowed: false, count: spec.limit, resetAt: blocked.until, retryAfterMs: blocked.until - now }
      : this.local.hit(key, spec, now);
    if (r.allowed) {
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
    this.#later(this.#remote.delete(key));
  }

  /** Adopts the shared cooldown of `key` (other replicas' 429s), at most once per sync interval. */
  pull(key: string, now: number): void {
    const last = this.#pulled.get(key);
    if (last !== undefined && now - last < this.#syncMs) return;
    this.#pulled.set(key, now);
    this.#later(this.#remote.getCooldown(key, now), (c) => {
      if (c) this.local.setCooldown(key, c);
    });
  }

  #owe(key: string, cost: number, spec: BucketSpec, now: number): void {
    const o = this.#owed.get(key);
    if (o === undefined) this.#owed.set(key, { cost, spec, now });
    else {
      o.cost += cost;
      o.spec = spec;
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
    const owed = this.#owed;
    this.#owed = new Map();
    for (const [key, o] of owed) {
      if (o.cost === 0) continue;
      this.#later(this.#remote.adjust(key, -o.cost, o.spec, o.now), (shared) => {
        const mine = this.local.peek(key, o.spec, o.now);
        if (shared < mine) this.local.adjust(key, shared - mine, o.spec, o.now);
      });
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

  #later<T>(value: T | Promise<T>, then?: (v: T) => void): void {
    if (value !== null && typeof value === 'object' && typeof (value as Promise<T>).then === 'function') {
      (value as Promise<T>).then(then, this.#onError).catch(this.#onError);
    } else if (then) {
      try {
        then(value as T);
      } catch {
        this.errors++;
      }
    }
  }
}

/** The synchronous face of a store: itself when it is synchronous, a local view otherwise. */
export function syncView(
  store: Store,
  syncMs: number,
  flushMs?: number,
): SyncStore & { pull?(key: string, now: number): void } {
  return store.synchronous === true ? (store as SyncStore) : new LocalView(store, syncMs, flushMs);
}
