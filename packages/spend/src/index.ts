/**
 * @lb/spend — what every request costs (a price table per model, overridable per model and per endpoint, and
 * `costOf(usage, model, endpoint?)` over every usage shape), virtual client keys (`KeyRing`: held hashed, with
 * models, tags, limits, budgets and expiry), budgets per key in a shared store (memory, or Redis with one script per
 * admission), and the `cheapest` routing strategy. Depends on `@lb/core` only.
 */

export type { BudgetSnapshot, BudgetsOptions } from './budgets.js';
export { Budgets } from './budgets.js';
export type { CheapestOptions } from './cheapest.js';
export { cheapest, registerCheapest } from './cheapest.js';
export type { BudgetName, SpendErrorCode } from './errors.js';
export { isSpendError, SpendError } from './errors.js';
export type { KeyBudgets, KeyConfig, KeyLimits, KeyRingOptions, VirtualKey } from './keys.js';
export { KeyRing, parseExpiry, sameSecret, sha256Hex } from './keys.js';
export type { SpendLedgerOptions, SpendPeriod, SpendSnapshot, SpendTotals } from './ledger.js';
export { OTHER, SpendLedger } from './ledger.js';
export type { Price, PricedEndpoint, PriceInput, PriceTableOptions, UnitUsage, UsageLike } from './prices.js';
export { costOf, PriceTable, priceUsage, tokensOf, toPrice } from './prices.js';
export { DEFAULT_PRICES, PRICES_DATE } from './prices-data.js';
export type { RedisBudgetStoreOptions, RedisScriptClient } from './redis.js';
export { RedisBudgetStore } from './redis.js';
export type { Admission, SpendOptions } from './spend.js';
export { admitBudgets, createSpend, Spend } from './spend.js';
export type { AdmitReply, BudgetStore, MaybePromise } from './store.js';
export { MemoryBudgetStore } from './store.js';
