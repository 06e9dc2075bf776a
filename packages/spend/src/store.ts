import { ConfigError } from '@lb/core';
/** A value now, or later (a remote store). */
export type MaybePromise<T> = T | Promise<T>;

/** What {@link BudgetStore.admit} decided. */
export interface AdmitReply {
  /** Index of the first counter at or over its limit (nothing changed then); -1: admitted, amounts added. */
  readonly refused: number;
  /** Every counter's value after the step (before it, when refused). */
  readonly values: readonly number[];
}

/**
 * Where spend and budget counters live: plain numbers under string keys, each expiring at a given time (the end of
 * its day or month window). Every method is one atomic step — a remote store runs each as one script — so replicas
 * sharing the store share the budgets exactly.
 *
 * Not the rate limiter's `Store`: a budget check is several counters decided together (USD today, USD this month,
 * tokens today) in one step, counters hold fractions of a dollar, and they reset at calendar boundaries rather than
 * refill; one script per admission is what keeps that atomic and at one round trip.
 *
 * The arrays a method receives are reused by the caller once it returns (or, for a promise, once the method has run
 * up to its first `await`): read them at once, copy what you keep.
 *
 * @example
 * const store: BudgetStore = new MemoryBudgetStore();
 * store.admit(['lb:spend:team-a:usd:d:20261207'], [5], [0.002], [Date.UTC(2026, 11, 8)]); // { refused: -1, values: [0.002] }
 */
export interface BudgetStore {
  /** True when every method answers synchronously. */
  readonly synchronous?: boolean;
  /**
   * If any counter `keys[i]` holds `limits[i]` or more, changes nothing and answers its index; else adds `amounts[i]`
   * to every counter (creating it at 0, to expire at `expireAt[i]`, epoch ms) and answers -1.
   */
  admit(
    keys: readonly string[],
    limits: readonly number[],
    amounts: readonly number[],
    expireAt: readonly number[],
  ): MaybePromise<AdmitReply>;
  /** Adds `amounts[i]` (may be negative) to each counter, creating it at 0 to expire at `expireAt[i]`. */
  add(keys: readonly string[], amounts: readonly number[], expireAt: readonly number[]): MaybePromise<void>;
  /** The counters' values (0 for a missing or expired one). */
  get(keys: readonly string[]): MaybePromise<number[]>;
  /** Forgets counters. */
  delete(keys: readonly string[]): MaybePromise<void>;
}

interface Counter {
  value: number;
  expireAt: number;
}

/**
 * The default {@link BudgetStore}: in this process's memory, synchronous, no timers. Expired counters are dropped
 * lazily (a sweep every `sweepEvery` new counters).
 */
export class MemoryBudgetStore implements BudgetStore {
  readonly synchronous = true as const;
  readonly #counters = new Map<string, Counter>();
  readonly #now: () => number;
  readonly #sweepEvery: number;
  #created = 0;

  /**
   * @param options.now Clock, epoch ms, for expiry. Default `Date.now`.
   * @param options.sweepEvery New counters between sweeps of expired ones. Default 1024.
   */
  constructor(options: { now?: () => number; sweepEvery?: number } = {}) {
    this.#now = options.now ?? Date.now;
    const s = options.sweepEvery ?? 1024;
    if (!Number.isInteger(s) || s < 1) {
      throw new ConfigError(
        `MemoryBudgetStore: sweepEvery must be an integer >= 1, received ${JSON.stringify(s)}`,
      );
    }
    this.#sweepEvery = s;
  }

  /** Counters held (expired ones not swept yet included). */
  get size(): number {
    return this.#counters.size;
  }

  admit(
    keys: readonly string[],
    limits: readonly number[],
    amounts: readonly number[],
    expireAt: readonly number[],
  ): AdmitReply {
    const now = this.#now();
    const values: number[] = new Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const v = this.#value(keys[i], now);
      values[i] = v;
      if (v >= limits[i]) return { refused: i, values };
    }
    for (let i = 0; i < keys.length; i++) values[i] = this.#add(keys[i], amounts[i], expireAt[i], now);
    return { refused: -1, values };
  }

  add(keys: readonly string[], amounts: readonly number[], expireAt: readonly number[]): void {
    const now = this.#now();
    for (let i = 0; i < keys.length; i++) this.#add(keys[i], amounts[i], expireAt[i], now);
  }

  get(keys: readonly string[]): number[] {
    const now = this.#now();
    return keys.map((k) => this.#value(k, now));
  }

  delete(keys: readonly string[]): void {
    for (const k of keys) this.#counters.delete(k);
  }

  #value(key: string, now: number): number {
    const c = this.#counters.get(key);
    return c === undefined || c.expireAt <= now ? 0 : c.value;
  }

  #add(key: string, amount: number, expireAt: number, now: number): number {
    const c = this.#counters.get(key);
    if (c !== undefined && c.expireAt > now) {
      c.value += amount;
      return c.value;
    }
    if (c !== undefined) {
      c.value = amount;
      c.expireAt = expireAt;
      return amount;
    }
    this.#counters.set(key, { value: amount, expireAt });
    if (++this.#created % this.#sweepEvery === 0) {
      for (const [k, x] of this.#counters) if (x.expireAt <= now) this.#counters.delete(k);
    }
    return amount;
  }
}
