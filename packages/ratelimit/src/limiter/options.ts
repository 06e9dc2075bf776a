/**
 * The limiter's options: what `attachRateLimit` accepts (documented, with defaults), and their checks.
 */
import { ConfigError, type Endpoint, type RouteRequest } from '@lb/core';
import type { Store } from '../store.js';
import type { RateLimitPeers } from './cooldowns.js';
import type { EndpointLimits } from './types.js';

/**
 * Options of {@link attachRateLimit}. Explicit options only: `@lb/config-env` maps the environment (per-endpoint
 * limits come from each endpoint's `limits`).
 */
export interface RateLimitOptions {
  /** Budgets of an endpoint. Default: `endpoint.limits` (`{ rps, rpm, tpm, burst }` from the config). */
  limits?: (endpoint: Endpoint) => EndpointLimits | undefined;
  /**
   * Read OpenAI's `x-ratelimit-remaining-requests` / `-tokens` and `x-ratelimit-reset-requests` / `-tokens` from
   * every response and stop sending to an endpoint before it answers 429. Default true.
   */
  headerThrottling?: boolean;
  /** Stop when the upstream's remaining requests fall to this many (kept for other clients of the key). Default 0. */
  reserveRequests?: number;
  /** Stop when the upstream's remaining tokens fall to this many. Default 0. */
  reserveTokens?: number;
  /**
   * Tokens a request will use, for `tpm` budgets and the upstream's token headers. Called at pick time: keep it
   * cheap. Default: `request.estimatedTokens ?? 0` (fill it with {@link estimateTokens} from the body).
   */
  estimateTokens?: (request: RouteRequest) => number;
  /** Where buckets and cooldowns live. Default: a new {@link MemoryStore}. Share one store to share budgets. */
  store?: Store;
  /** Prefix of every store key (namespaces several routers in one shared store). Default `lb:rl:`. */
  keyPrefix?: string;
  /** Cooldown after an upstream 429 without a retry time, ms. Default 1000. */
  cooldownMs?: number;
  /** Longest cooldown taken from headers or Retry-After, ms. Default 600000. */
  maxCooldownMs?: number;
  /** With a remote store: least time between reads of an endpoint's shared cooldown, ms. Default 1000. */
  syncIntervalMs?: number;
  /**
   * With a remote store: tokens spent are sent together, per bucket, this often (ms), instead of one store call per
   * request. Default 10.
   */
  flushIntervalMs?: number;
  /**
   * Most requests {@link RateLimitHandle.execute} lets wait for budget at once (the router waits up to its
   * `maxWaitMs` for the earliest endpoint); more are refused at once with a {@link RateLimitedError}. Default 1000.
   */
  maxQueue?: number;
  /** Name of the guard (in snapshots and veto reasons). Default `ratelimit`. */
  name?: string;
  /**
   * With a shared store: a channel to the other replicas (Redis pub/sub in lb-server). Cooldowns started here are
   * published on it and those of the others adopted at once. Default none (others read a cooldown from the store at
   * most every `syncIntervalMs`, after their next request).
   */
  peers?: RateLimitPeers;
  /** This replica's name on `peers` (its own messages are ignored). Default: random. */
  replicaId?: string;
  /** Clock for events, epoch ms. Default: the router's `now`, else `Date.now`. */
  now?: () => number;
}

export function check(name: string, v: unknown, min: number, integer = false): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    throw new ConfigError(
      `attachRateLimit: ${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, received ${JSON.stringify(v)}`,
    );
  }
}

/** A value named in an error message, never its content beyond a few keys. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object')
    return Array.isArray(v) ? 'an array' : `an object (${Object.keys(v).slice(0, 5).join(', ')})`;
  return JSON.stringify(v) ?? String(v);
}
