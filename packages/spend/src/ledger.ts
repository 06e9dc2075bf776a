import { ConfigError } from '@lb/core';
/** Totals of one key, model or endpoint in a period. */
export interface SpendTotals {
  /** USD of the priced requests. */
  usd: number;
  tokens: number;
  requests: number;
  /** Requests whose model had no price (their cost is unknown, not in `usd`). */
  unpriced: number;
}

/** Spend in one period (a UTC day or month), in all and by key, model and endpoint. */
export interface SpendPeriod {
  /** `2026-12-07` for a day, `2026-12` for a month. */
  readonly period: string;
  readonly total: SpendTotals;
  readonly byKey: Readonly<Record<string, SpendTotals>>;
  readonly byModel: Readonly<Record<string, SpendTotals>>;
  readonly byEndpoint: Readonly<Record<string, SpendTotals>>;
}

/** What {@link SpendLedger.snapshot} returns. */
export interface SpendSnapshot {
  readonly today: SpendPeriod;
  readonly month: SpendPeriod;
}

/** Options of {@link SpendLedger}. */
export interface SpendLedgerOptions {
  /** Distinct keys, models or endpoints kept per period; past it, new ones count under `(other)`. Default 100. */
  maxLabels?: number;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
}

/** The label past `maxLabels`. */
export const OTHER = '(other)';

const newTotals = (): SpendTotals => ({ usd: 0, tokens: 0, requests: 0, unpriced: 0 });

class Period {
  readonly total = newTotals();
  readonly byKey = new Map<string, SpendTotals>();
  readonly byModel = new Map<string, SpendTotals>();
  readonly byEndpoint = new Map<string, SpendTotals>();
  constructor(
    readonly name: string,
    readonly end: number,
  ) {}

  toJSON(): SpendPeriod {
    return {
      period: this.name,
      total: { ...this.total },
      byKey: copy(this.byKey),
      byModel: copy(this.byModel),
      byEndpoint: copy(this.byEndpoint),
    };
  }
}

function copy(m: Map<string, SpendTotals>): Record<string, SpendTotals> {
  const out: Record<string, SpendTotals> = {};
  for (const [k, v] of m) out[k] = { ...v };
  return out;
}

interface LastSlots {
  readonly label: string | undefined;
  readonly day: Period;
  readonly month: Period;
  readonly d: SpendTotals;
  readonly m: SpendTotals;
}

/** How many labels of each dimension {@link SpendLedger.record} remembers the slots of. */
const LAST_LABELS = 4;

function add(t: SpendTotals, usd: number | undefined, tokens: number): void {
  t.requests++;
  t.tokens += tokens;
  if (usd === undefined) t.unpriced++;
  else t.usd += usd;
}

/**
 * What this process spent today and this month (UTC), in all and by key, model and endpoint, for `/stats` and the
 * admin API. Labels are bounded (`maxLabels` each, then `(other)`), so clients naming random models cannot grow it.
 * In memory, per process: the budgets' shared counters are what limits spend across replicas.
 *
 * @example
 * router.on('attempt:usage', (e) => ledger.record(keyId, e.model, e.endpointId, prices.costOf(e.usage, e.model), tokensOf(e.usage)));
 * ledger.snapshot().today.byKey['team-a'].usd;
 */
export class SpendLedger {
  readonly #max: number;
  readonly #now: () => number;
  #day: Period;
  #month: Period;
  /** The labels last counted and their slots in the current periods, per dimension. */
  readonly #byKey: LastSlots[] = [];
  readonly #byModel: LastSlots[] = [];
  readonly #byEndpoint: LastSlots[] = [];

  constructor(options: SpendLedgerOptions = {}) {
    const max = options.maxLabels ?? 100;
    if (!Number.isInteger(max) || max < 1) {
      throw new ConfigError(
        `SpendLedger: maxLabels must be an integer >= 1, received ${JSON.stringify(max)}`,
      );
    }
    this.#max = max;
    this.#now = options.now ?? Date.now;
    const now = this.#now();
    this.#day = dayAt(now);
    this.#month = monthAt(now);
  }

  /**
   * Counts one request: `usd` undefined when its model has no price (counted as `unpriced`, never as 0 USD).
   * `key`, `model`, `endpoint` undefined count under `(none)`.
   */
  record(
    key: string | undefined,
    model: string | undefined,
    endpoint: string | undefined,
    usd: number | undefined,
    tokens: number,
  ): void {
    this.#roll();
    add(this.#day.total, usd, tokens);
    add(this.#month.total, usd, tokens);
    // A label among the last few seen reuses its slots (no map look-ups): one key, one model and a few endpoints
    // in turn are the common case.
    this.#count(this.#byKey, 'byKey', key, usd, tokens);
    this.#count(this.#byModel, 'byModel', model, usd, tokens);
    this.#count(this.#byEndpoint, 'byEndpoint', endpoint, usd, tokens);
  }

  #count(
    last: LastSlots[],
    field: 'byKey' | 'byModel' | 'byEndpoint',
    label: string | undefined,
    usd: number | undefined,
    tokens: number,
  ): void {
    const day = this.#day;
    const month = this.#month;
    let s: LastSlots | undefined;
    for (let i = 0; i < last.length; i++) {
      const x = last[i];
      if (x.label === label && x.day === day && x.month === month) {
        s = x;
        break;
      }
    }
    if (s === undefined) {
      s = { label, day, month, d: this.#slot(day[field], label), m: this.#slot(month[field], label) };
      // The last few labels seen, newest first.
      if (last.length >= LAST_LABELS) last.pop();
      last.unshift(s);
    }
    add(s.d, usd, tokens);
    add(s.m, usd, tokens);
  }

  /** Starts a new day or month when the clock has passed into one. */
  #roll(): void {
    const now = this.#now();
    if (now >= this.#day.end) this.#day = dayAt(now);
    if (now >= this.#month.end) this.#month = monthAt(now);
  }

  /** Copies of today's and this month's totals. */
  snapshot(): SpendSnapshot {
    this.#roll();
    return { today: this.#day.toJSON(), month: this.#month.toJSON() };
  }

  #slot(m: Map<string, SpendTotals>, label: string | undefined): SpendTotals {
    const name = label ?? '(none)';
    let t = m.get(name);
    if (t !== undefined) return t;
    const l = m.size >= this.#max ? OTHER : name;
    t = m.get(l);
    if (t === undefined) {
      t = newTotals();
      m.set(l, t);
    }
    return t;
  }
}

function dayAt(now: number): Period {
  const day = Math.floor(now / 86_400_000);
  return new Period(new Date(day * 86_400_000).toISOString().slice(0, 10), (day + 1) * 86_400_000);
}

function monthAt(now: number): Period {
  const d = new Date(now);
  return new Period(d.toISOString().slice(0, 7), Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
}
