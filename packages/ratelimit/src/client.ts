import { ConfigError } from '@lb/core';
import { syncView } from './internal/local-view.js';
import { MemoryStore, type Store, type SyncStore, type WindowSpec } from './store.js';

/** Options of {@link createClientLimiter}. */
export interface ClientLimiterOptions {
  /** Requests allowed per window, per client key. Required, integer >= 1. Env `RATE_LIMIT_REQUESTS` (via `@lb/config-env`). */
  requests: number;
  /** Window length, ms. Required, > 0. Env `RATE_LIMIT_WINDOW` (seconds or `1m`, via `@lb/config-env`). */
  windowMs: number;
  /**
   * `sliding` (default): the previous window still counts for the part of it inside the last `windowMs`, so no
   * client gets twice the limit across a window edge. `fixed`: counters reset at multiples of `windowMs`.
   */
  algorithm?: 'fixed' | 'sliding';
  /** Where counters live. Default: a new {@link MemoryStore}. A shared store limits clients across replicas. */
  store?: Store;
  /** Prefix of every store key. Default `lb:client:`. */
  keyPrefix?: string;
  /** With a remote store: least time between reads of shared state, ms. Default 1000. */
  syncIntervalMs?: number;
  /** With a remote store: how often the requests admitted are sent, one call per window, ms. Default 10. */
  flushIntervalMs?: number;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
}

/** What {@link ClientLimiter.take} decided. */
export interface ClientLimitResult {
  /** Serve the request. */
  allowed: boolean;
  /** Requests left in the window after this one (send as `x-ratelimit-remaining-requests`). */
  remaining: number;
  /** Requests per window (send as `x-ratelimit-limit-requests`). */
  limit: number;
  /** 0 when allowed; else ms until the next request would be allowed (send as `Retry-After`, in seconds). */
  retryAfterMs: number;
  /** Epoch ms when the current window ends. */
  resetAt: number;
}

/** A per-client limiter (API key id or IP): N requests per window. */
export interface ClientLimiter {
  readonly limit: number;
  readonly windowMs: number;
  readonly algorithm: 'fixed' | 'sliding';
  /** Counts one request of `clientKey` if allowed. Synchronous, no timers. Denied requests are not counted. */
  take(clientKey: string): ClientLimitResult;
  /** Forgets a client's counter. */
  reset(clientKey: string): void;
  /** Calls to a remote store that failed so far (ignored otherwise: a store outage never fails a request). */
  readonly storeErrors: number;
}

/**
 * Limits each client to `requests` per `windowMs` (sliding window by default), as lb-server does per API key or IP.
 * Pass an id or a hash as the client key, not a raw secret, when the store is shared.
 *
 * @example
 * const limiter = createClientLimiter({ requests: 60, windowMs: 60_000 });
 * const r = limiter.take(clientIp);
 * if (!r.allowed) throw RateLimitedError.fromClient(r, 60_000); // 429 with Retry-After
 */
export function createClientLimiter(options: ClientLimiterOptions): ClientLimiter {
  if (!options || typeof options !== 'object') {
    throw new ConfigError(
      `createClientLimiter: expected options { requests, windowMs }, received ${String(options)}`,
    );
  }
  const { requests, windowMs } = options;
  if (typeof requests !== 'number' || !Number.isInteger(requests) || requests < 1) {
    throw new ConfigError(
      `createClientLimiter: requests must be an integer >= 1, received ${JSON.stringify(requests)}`,
    );
  }
  if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs <= 0) {
    throw new ConfigError(
      `createClientLimiter: windowMs must be a number > 0, received ${JSON.stringify(windowMs)}`,
    );
  }
  const algorithm = options.algorithm ?? 'sliding';
  if (algorithm !== 'fixed' && algorithm !== 'sliding') {
    throw new ConfigError(
      `createClientLimiter: algorithm must be 'fixed' or 'sliding', received ${JSON.stringify(algorithm)}`,
    );
  }
  if (options.now !== undefined && typeof options.now !== 'function') {
    throw new ConfigError(`createClientLimiter: now must be a function, received ${typeof options.now}`);
  }
  const store: SyncStore = syncView(
    options.store ?? new MemoryStore(),
    options.syncIntervalMs ?? 1000,
    options.flushIntervalMs ?? 10,
  );
  const prefix = options.keyPrefix ?? 'lb:client:';
  const now = options.now ?? Date.now;
  const spec: WindowSpec = Object.freeze({ limit: requests, windowMs, sliding: algorithm === 'sliding' });
  return {
    limit: requests,
    windowMs,
    algorithm,
    take(clientKey: string): ClientLimitResult {
      const r = store.hit(prefix + clientKey, spec, now());
      return {
        allowed: r.allowed,
        remaining: Math.max(0, requests - r.count),
        limit: requests,
        retryAfterMs: r.retryAfterMs,
        resetAt: r.resetAt,
      };
    },
    reset(clientKey: string): void {
      store.delete(prefix + clientKey);
    },
    get storeErrors(): number {
      return (store as { errors?: number }).errors ?? 0;
    },
  };
}
