/**
 * @lb/ratelimit — per-endpoint budgets (requests/s with burst, requests/min, tokens/min), pre-emptive throttling
 * from OpenAI's `x-ratelimit-*` headers, cooldowns from upstream 429s, per-client limits, and a small `Store`
 * interface: in memory by default, or shared by every replica in Redis (`RedisStore`). Attaches to an `@lb/core` router as a guard.
 */

export type { ClientLimiter, ClientLimiterOptions, ClientLimitResult } from './client.js';
export { createClientLimiter } from './client.js';
export type { RateLimitScope } from './errors.js';
export { isRateLimitedError, RateLimitedError } from './errors.js';
export type { EstimateOptions } from './estimate.js';
export { estimateTokens } from './estimate.js';
export type { RateLimitPeers } from './limiter/cooldowns.js';
export type { RateLimitOptions } from './limiter/options.js';
export type {
  BudgetSnapshot,
  EndpointLimits,
  RateLimitDescription,
  RateLimitEndpointSnapshot,
  RateLimitHandle,
} from './limiter/types.js';
export { attachRateLimit, publishStoreHealth } from './limiter.js';
export type { RedisClientLike, RedisStoreOptions } from './redis.js';
export { RedisStore } from './redis.js';
export type {
  BucketCell,
  BucketSpec,
  Cooldown,
  MaybePromise,
  Store,
  StoreHealth,
  StoreLatency,
  StoreState,
  StoreStateChange,
  StoreStatus,
  SyncStore,
  TakeResult,
  WindowResult,
  WindowSpec,
} from './store.js';
export { MemoryStore } from './store.js';
