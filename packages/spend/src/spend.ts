import { Budgets } from './budgets.js';
import type { SpendError } from './errors.js';
import { type KeyConfig, KeyRing, type VirtualKey } from './keys.js';
import { SpendLedger } from './ledger.js';
import { type PricedEndpoint, type PriceInput, PriceTable, tokensOf, type UsageLike } from './prices.js';
import type { BudgetStore, MaybePromise } from './store.js';

/** Options of {@link createSpend}: `LbConfig.spend` and `server.apiKeys` as they come, plus where budgets live. */
export interface SpendOptions {
  /** Named client keys (`LbConfig.spend.keys`, config `[[keys]]`). */
  keys?: readonly KeyConfig[];
  /** Unnamed keys without limits (`LbConfig.server.apiKeys`, env `LB_API_KEYS`). */
  apiKeys?: readonly string[];
  /** Prices over the shipped table (`LbConfig.spend.prices`, config `[prices."model"]`). */
  prices?: Readonly<Record<string, PriceInput>>;
  /** Where budget counters live. Default memory; a `RedisBudgetStore` shares them across replicas. */
  store?: BudgetStore;
  /** Replicas sharing the store (their local share while it fails). Default 1. */
  replicas?: number;
  /** Once per model without a price: log it. */
  onUnknownPrice?: (model: string) => void;
  /** Each failed call to a remote budget store (never fails a request). */
  onStoreError?: (error: unknown) => void;
  /** Ledger labels kept per period (keys, models, endpoints). Default 100. */
  maxLabels?: number;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
}

/** One admitted request, from {@link Spend.admit} to {@link Spend.settle}. */
export interface Admission {
  readonly key: VirtualKey;
  readonly model: string | undefined;
  /** USD reserved (undefined: the model has no price). */
  readonly estimatedUsd: number | undefined;
  readonly estimatedTokens: number;
  /** Epoch ms of the admission. */
  readonly at: number;
}

/**
 * Keys, prices, budgets and the ledger, wired as a gateway uses them: `authorize` + `admit` before routing,
 * `settle` when the usage is known. The parts stay reachable (`keys`, `prices`, `budgets`, `ledger`) for the admin
 * API and `/stats`.
 *
 * @example
 * const spend = createSpend({ keys: config.spend?.keys, apiKeys: config.server.apiKeys, prices: config.spend?.prices, onUnknownPrice: (m) => log.warn({ model: m }, 'no price') });
 * const adm = await spend.admit(bearer, body.model, estimatedTokens); // throws SpendError 401 / 403 / 429
 * // … route, send, read usage …
 * const usd = spend.settle(adm, usage, upstreamModel, endpoint);     // res.setHeader('x-lb-cost', usd)
 */
export class Spend {
  readonly prices: PriceTable;
  readonly keys: KeyRing;
  readonly budgets: Budgets;
  readonly ledger: SpendLedger;
  readonly #now: () => number;

  constructor(options: SpendOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.prices = new PriceTable({
      ...(options.prices ? { prices: options.prices } : {}),
      ...(options.onUnknownPrice ? { onUnknown: options.onUnknownPrice } : {}),
    });
    this.keys = new KeyRing(options.keys ?? [], { apiKeys: options.apiKeys ?? [], now: this.#now });
    this.budgets = new Budgets({
      ...(options.store ? { store: options.store } : {}),
      ...(options.replicas !== undefined ? { replicas: options.replicas } : {}),
      ...(options.onStoreError ? { onStoreError: options.onStoreError } : {}),
      now: this.#now,
    });
    this.ledger = new SpendLedger({
      ...(options.maxLabels !== undefined ? { maxLabels: options.maxLabels } : {}),
      now: this.#now,
    });
  }

  /** True when client keys are configured (named or unnamed): requests must present one. */
  get enabled(): boolean {
    return this.keys.size > 0;
  }

  /**
   * Before routing: finds the key (401), checks its expiry (401) and the model (403), and admits its budgets with
   * the estimate (429). Throws the {@link SpendError}; answers the admission — synchronously with a memory store,
   * else a promise after one store round trip.
   */
  admit(
    secret: string | undefined,
    model: string | undefined,
    estimatedTokens: number,
  ): MaybePromise<Admission> {
    const now = this.#now();
    const key = this.keys.authorize(secret, model, now);
    return admitBudgets(this.budgets, this.prices, key, model, estimatedTokens, now);
  }

  /**
   * When the usage is known (the response, or a stream's usage tail): its cost at `endpoint` for `model` (the model
   * the provider answered with, else the upstream model sent; default the admitted one), the budgets settled, the
   * ledger counted. `usage` undefined: the request failed (a refund). Answers the USD (undefined when unpriced, never
   * 0 for an unknown price) for `x-lb-cost` and the bus. Never throws.
   */
  settle(
    adm: Admission,
    usage: UsageLike | undefined | null,
    model: string | undefined = adm.model,
    endpoint?: PricedEndpoint,
  ): number | undefined {
    const usd = usage ? this.prices.costOf(usage, model, endpoint) : 0;
    const tokens = usage ? tokensOf(usage) : 0;
    const p = this.budgets.settle(adm.key, adm.estimatedUsd, adm.estimatedTokens, usd, tokens, adm.at);
    // A remote store's promise never rejects (failures are owed); nothing to wait for here.
    void p;
    if (usage) this.ledger.record(adm.key.id, model, endpoint?.id, usd, tokens);
    return usage ? usd : undefined;
  }
}

/**
 * Admits a key's budgets with a token estimate (priced for `model`): the {@link Admission} to settle later, or the
 * {@link SpendError} thrown (the promise rejects with it when the store is remote). What {@link Spend.admit} does
 * after finding the key, for a gateway that finds and checks keys its own way.
 */
export function admitBudgets(
  budgets: Budgets,
  prices: PriceTable,
  key: VirtualKey,
  model: string | undefined,
  estimatedTokens: number,
  at: number,
): MaybePromise<Admission> {
  const estimatedUsd = key.hasBudget ? prices.costOf({ prompt_tokens: estimatedTokens }, model) : undefined;
  const adm: Admission = { key, model, estimatedUsd, estimatedTokens, at };
  const v = budgets.admit(key, estimatedUsd, estimatedTokens);
  if (v === undefined) return adm;
  if (!(v instanceof Promise)) throw v;
  return v.then((e: SpendError | undefined) => {
    if (e) throw e;
    return adm;
  });
}

/** Creates a {@link Spend} (see {@link SpendOptions}). */
export function createSpend(options: SpendOptions = {}): Spend {
  return new Spend(options);
}
