import { ConfigError } from '@lb/core';
import { type BudgetName, SpendError } from './errors.js';
import type { VirtualKey } from './keys.js';
import { type AdmitReply, type BudgetStore, type MaybePromise, MemoryBudgetStore } from './store.js';

/** Options of {@link Budgets}. */
export interface BudgetsOptions {
  /** Where counters live. Default: a new {@link MemoryBudgetStore}. A shared store (Redis) shares budgets across replicas. */
  store?: BudgetStore;
  /** Prefix of every counter key. Default `lb:spend:`. */
  prefix?: string;
  /**
   * How many replicas share the store. While the store fails, each replica admits on its local share: what it last
   * saw spent, plus 1/`replicas` of what was left then. Default 1.
   */
  replicas?: number;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** Called with each error of a remote store (which never fails a request). */
  onStoreError?: (error: unknown) => void;
}

/** A key's spend in the current windows, for budgets it has. */
export interface BudgetSnapshot {
  readonly key: string;
  readonly usdDay?: { spent: number; limit: number; resetAt: number };
  readonly usdMonth?: { spent: number; limit: number; resetAt: number };
  readonly tokensDay?: { spent: number; limit: number; resetAt: number };
  /** The key's `tpm`, in the current minute. */
  readonly tokensMinute?: { spent: number; limit: number; resetAt: number };
}

const DAY = 86_400_000;
const MINUTE = 60_000;
const LABEL: Record<BudgetName, string> = {
  usd_day: 'USD per day',
  usd_month: 'USD per month',
  tokens_day: 'tokens per day',
  tokens_minute: 'tokens per minute',
};

/** The current minute, UTC day and month windows, recomputed when the minute changes. */
interface Windows {
  minute: number;
  day: number;
  dayTag: string;
  dayEnd: number;
  monthTag: string;
  monthEnd: number;
}

/** What a budget counter counts: dollars or tokens. */
type BudgetUnit = 'usd' | 'tokens';

/** Per key: its counters' keys and limits for the current windows, scratch for amounts, and what the store said. */
interface KeyState {
  /** The key object it was built for: a reload makes new ones, with limits that may differ. */
  key: VirtualKey;
  day: number;
  /** The minute its `tpm` counter is for (-1: the key has no `tpm`, the state lasts the day). */
  minute: number;
  names: BudgetName[];
  keys: string[];
  limits: number[];
  expireAt: number[];
  /** What each counter counts. */
  kinds: BudgetUnit[];
  amounts: number[];
  /** Values last seen in the shared store (for the local share while it fails). */
  seen: number[];
  shares: number[];
}

function windowsAt(now: number): Windows {
  const day = Math.floor(now / DAY);
  const minute = Math.floor(now / MINUTE);
  const d = new Date(day * DAY);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const mm = String(m + 1).padStart(2, '0');
  return {
    minute,
    day,
    dayTag: `${y}${mm}${String(d.getUTCDate()).padStart(2, '0')}`,
    dayEnd: (day + 1) * DAY,
    monthTag: `${y}${mm}`,
    monthEnd: Date.UTC(y, m + 1, 1),
  };
}

/** A key's counters in the windows `w` (a fresh state; the caller caches it). */
function stateOf(key: VirtualKey, w: Windows, prefix: string): KeyState {
  const b = key.budgets;
  const base = `${prefix}${key.id}:`;
  const s: KeyState = {
    key,
    day: w.day,
    minute: key.limits.tpm === undefined ? -1 : w.minute,
    names: [],
    keys: [],
    limits: [],
    expireAt: [],
    kinds: [],
    amounts: [],
    seen: [],
    shares: [],
  };
  const all: [BudgetName, number | undefined, string, number, BudgetUnit][] = [
    ['usd_day', b.usdDay, `usd:d:${w.dayTag}`, w.dayEnd, 'usd'],
    ['usd_month', b.usdMonth, `usd:m:${w.monthTag}`, w.monthEnd, 'usd'],
    ['tokens_day', b.tokensDay, `tok:d:${w.dayTag}`, w.dayEnd, 'tokens'],
    ['tokens_minute', key.limits.tpm, `tok:min:${w.minute}`, (w.minute + 1) * MINUTE, 'tokens'],
  ];
  for (const [name, limit, tail, end, kind] of all) {
    if (limit === undefined) continue;
    s.names.push(name);
    s.keys.push(base + tail);
    s.limits.push(limit);
    s.expireAt.push(end);
    s.kinds.push(kind);
    s.amounts.push(0);
    s.seen.push(0);
    s.shares.push(0);
  }
  return s;
}

function inTime(ms: number): string {
  const m = Math.max(1, Math.ceil(ms / 60_000));
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
}

/**
 * Budgets per client key — USD per UTC day, USD per UTC month, tokens per UTC day — checked before a request with
 * an estimate and settled from the real usage after. Counters live in a {@link BudgetStore}: memory (synchronous:
 * `admit` answers at once), or Redis (one script per admission, shared by replicas; `admit` answers a promise).
 *
 * A key is admitted while each of its counters is below its budget; the admission adds the estimate at once, so
 * concurrent requests see it. The overshoot is therefore at most one request (plus what estimates missed) with a
 * shared store, and one per replica while the store is down and each replica decides on its local share. Keys
 * without budgets cost nothing: no counter, no store call.
 *
 * @example
 * const budgets = new Budgets();
 * const refused = await budgets.admit(key, estimatedUsd, estimatedTokens); // undefined or a SpendError (429)
 * if (refused) throw refused;
 * // … after the response:
 * budgets.settle(key, estimatedUsd, estimatedTokens, prices.costOf(usage, model), tokensOf(usage));
 */
export class Budgets {
  readonly #store: BudgetStore;
  readonly #sync: boolean;
  readonly #local: MemoryBudgetStore | undefined;
  readonly #prefix: string;
  readonly #replicas: number;
  readonly #now: () => number;
  readonly #onStoreError: ((e: unknown) => void) | undefined;
  readonly #states = new Map<string, KeyState>();
  #windows: Windows;
  /** Amounts the shared store has not received yet (it failed): sent with the next call that succeeds. */
  #owed = new Map<string, { amount: number; expireAt: number }>();
  #flushing = false;
  /** Remote store errors so far. */
  storeErrors = 0;

  constructor(options: BudgetsOptions = {}) {
    const replicas = options.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1) {
      throw new ConfigError(
        `Budgets: replicas must be an integer >= 1, received ${JSON.stringify(replicas)}`,
      );
    }
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new ConfigError(`Budgets: now must be a function, received ${typeof options.now}`);
    }
    this.#now = options.now ?? Date.now;
    this.#store = options.store ?? new MemoryBudgetStore({ now: this.#now });
    this.#sync = this.#store.synchronous === true;
    this.#local = this.#sync ? undefined : new MemoryBudgetStore({ now: this.#now });
    this.#prefix = options.prefix ?? 'lb:spend:';
    this.#replicas = replicas;
    this.#onStoreError = options.onStoreError;
    this.#windows = windowsAt(this.#now());
  }

  /**
   * Checks `key`'s budgets and reserves the estimate. Answers `undefined` (go ahead) or a {@link SpendError}
   * `budget_exceeded` (429, `retryAfterMs` to the reset) — synchronously with a synchronous store, else as a
   * promise after one store call. `usd` undefined (an unpriced model) reserves no money but still needs money left.
   */
  admit(key: VirtualKey, usd: number | undefined, tokens: number): MaybePromise<SpendError | undefined> {
    if (!key.hasBudget) return undefined;
    const now = this.#now();
    const s = this.#state(key, now);
    const amounts = s.amounts;
    for (let i = 0; i < amounts.length; i++) amounts[i] = s.kinds[i] === 'usd' ? (usd ?? 0) : tokens;
    if (this.#sync) {
      const r = this.#store.admit(s.keys, s.limits, amounts, s.expireAt) as AdmitReply;
      return r.refused < 0 ? undefined : this.#refusal(key, s, r.refused, now);
    }
    let p: Promise<AdmitReply>;
    try {
      p = this.#store.admit(s.keys, s.limits, amounts, s.expireAt) as Promise<AdmitReply>;
    } catch (e) {
      p = Promise.reject(e);
    }
    // The amounts are copied for the fallback: the scratch array may be reused by the next admission meanwhile.
    const copy = amounts.slice();
    return p.then(
      (r) => {
        for (let i = 0; i < r.values.length; i++) s.seen[i] = r.values[i];
        if (this.#owed.size) this.#flush();
        return r.refused < 0 ? undefined : this.#refusal(key, s, r.refused, now);
      },
      (e) => {
        this.#failed(e);
        return this.#admitLocally(key, s, copy, now);
      },
    );
  }

  /**
   * Corrects an admission of `key` from the estimate to what the request really used (`usd` undefined: unpriced,
   * counts no money). Call it once per admitted request, failed ones included (with 0 and 0: a refund). Pass
   * `admittedAt` (epoch ms of the admission) so that a request admitted before UTC midnight is settled in the day that
   * holds its estimate. Never throws; with a remote store, returns a promise that settles when the store has it (or
   * owes it, when the store fails).
   */
  settle(
    key: VirtualKey,
    estimatedUsd: number | undefined,
    estimatedTokens: number,
    usd: number | undefined,
    tokens: number,
    admittedAt?: number,
  ): MaybePromise<void> {
    if (!key.hasBudget) return;
    const now = this.#now();
    let s = this.#state(key, now);
    // Admitted before a window ended: the correction belongs to the window that holds the estimate.
    if (
      admittedAt !== undefined &&
      (Math.floor(admittedAt / DAY) !== s.day ||
        (s.minute >= 0 && Math.floor(admittedAt / MINUTE) !== s.minute))
    ) {
      s = stateOf(key, windowsAt(admittedAt), this.#prefix);
    }
    const amounts = s.amounts;
    const dUsd = (usd ?? 0) - (estimatedUsd ?? 0);
    const dTokens = tokens - estimatedTokens;
    if (dUsd === 0 && dTokens === 0) return;
    for (let i = 0; i < amounts.length; i++) amounts[i] = s.kinds[i] === 'usd' ? dUsd : dTokens;
    if (this.#sync) {
      this.#store.add(s.keys, amounts, s.expireAt);
      return;
    }
    const copy = amounts.slice();
    let p: Promise<void>;
    try {
      p = this.#store.add(s.keys, amounts, s.expireAt) as Promise<void>;
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.then(
      () => {
        if (this.#owed.size) this.#flush();
      },
      (e) => {
        this.#failed(e);
        this.#local?.add(s.keys, copy, s.expireAt);
        this.#owe(s.keys, copy, s.expireAt);
      },
    );
  }

  /** What `key` spent in the current windows, for the budgets it has. */
  async snapshot(key: VirtualKey): Promise<BudgetSnapshot> {
    const now = this.#now();
    const s = this.#state(key, now);
    const values = await this.#store.get(s.keys);
    const out: Record<string, unknown> = { key: key.id };
    s.names.forEach((n, i) => {
      const field =
        n === 'usd_day'
          ? 'usdDay'
          : n === 'usd_month'
            ? 'usdMonth'
            : n === 'tokens_day'
              ? 'tokensDay'
              : 'tokensMinute';
      out[field] = { spent: values[i], limit: s.limits[i], resetAt: s.expireAt[i] };
    });
    return out as unknown as BudgetSnapshot;
  }

  /** Forgets a key's state and counters (a revoked key). */
  async forget(key: VirtualKey): Promise<void> {
    const s = this.#states.get(key.id);
    this.#states.delete(key.id);
    if (s) await this.#store.delete(s.keys);
  }

  #state(key: VirtualKey, now: number): KeyState {
    let w = this.#windows;
    if (now >= (w.minute + 1) * MINUTE || now < w.minute * MINUTE) w = this.#windows = windowsAt(now);
    let s = this.#states.get(key.id);
    if (s !== undefined && s.day === w.day && (s.minute < 0 || s.minute === w.minute) && s.key === key)
      return s;
    s = stateOf(key, w, this.#prefix);
    this.#states.set(key.id, s);
    return s;
  }

  #refusal(key: VirtualKey, s: KeyState, i: number, now: number): SpendError {
    const name = s.names[i];
    const resetAt = s.expireAt[i];
    const limit = s.limits[i];
    const shown = s.kinds[i] === 'usd' ? `$${limit}` : `${limit} tokens`;
    if (name === 'tokens_minute')
      return new SpendError(
        'rate_limit_exceeded',
        `Rate limit reached for key ${JSON.stringify(key.id)}: tokens per minute (tpm ${limit}). Retry after ${new Date(resetAt).toISOString()}.`,
        {
          ...(key.name !== undefined ? { keyName: key.name } : {}),
          budget: name,
          resetAt,
          retryAfterMs: resetAt - now,
        },
      );
    return new SpendError(
      'budget_exceeded',
      `Budget exceeded for key ${JSON.stringify(key.id)}: ${LABEL[name]} (${shown}) is spent. It resets at ${new Date(resetAt).toISOString()} (in ${inTime(resetAt - now)}).`,
      {
        ...(key.name !== undefined ? { keyName: key.name } : {}),
        budget: name,
        resetAt,
        retryAfterMs: resetAt - now,
      },
    );
  }

  /** The shared store failed: admit on this replica's share of what was left when it last answered. */
  #admitLocally(key: VirtualKey, s: KeyState, amounts: number[], now: number): SpendError | undefined {
    const local = this.#local as MemoryBudgetStore;
    for (let i = 0; i < s.limits.length; i++) {
      s.shares[i] = Math.max(0, s.limits[i] - s.seen[i]) / this.#replicas;
    }
    const r = local.admit(s.keys, s.shares, amounts, s.expireAt);
    if (r.refused >= 0) return this.#refusal(key, s, r.refused, now);
    this.#owe(s.keys, amounts, s.expireAt);
    return undefined;
  }

  #owe(keys: readonly string[], amounts: readonly number[], expireAt: readonly number[]): void {
    for (let i = 0; i < keys.length; i++) {
      const o = this.#owed.get(keys[i]);
      if (o) o.amount += amounts[i];
      else this.#owed.set(keys[i], { amount: amounts[i], expireAt: expireAt[i] });
    }
  }

  /** Sends what the shared store missed while it failed, in one call; kept for later if that fails too. */
  #flush(): void {
    if (this.#flushing) return;
    const owed = this.#owed;
    this.#owed = new Map();
    const now = this.#now();
    const keys: string[] = [];
    const amounts: number[] = [];
    const expireAt: number[] = [];
    for (const [k, o] of owed) {
      if (o.expireAt <= now || o.amount === 0) continue;
      keys.push(k);
      amounts.push(o.amount);
      expireAt.push(o.expireAt);
    }
    if (!keys.length) return;
    this.#flushing = true;
    Promise.resolve()
      .then(() => this.#store.add(keys, amounts, expireAt))
      .then(
        () => {
          this.#flushing = false;
        },
        (e) => {
          this.#flushing = false;
          this.#failed(e);
          this.#owe(keys, amounts, expireAt);
        },
      );
  }

  #failed(e: unknown): void {
    this.storeErrors++;
    try {
      this.#onStoreError?.(e);
    } catch {}
  }
}
