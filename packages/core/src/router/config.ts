/**
 * The router's options: the config shape `createRouter` takes (what `@lb/config-env` produces), its defaults, and the
 * checks a config passes before a router commits to it.
 */
import type { EndpointConfig } from '../endpoint.js';
import { ConfigError } from '../errors.js';
import { type OutlierEjectionOptions, validateOutlierEjection } from '../outlier.js';
import type { Strategy, StrategyFactory, StrategyOptions } from '../strategy.js';

/** One backend of a model group: an endpoint by id, with its own upstream model name, weight, priority and tags. */
export interface ModelBackendConfig {
  endpoint: string;
  model?: string;
  weight?: number;
  priority?: number;
  tags?: readonly string[];
}

/** An exposed model name served by a chosen set of backends with a strategy of its own. */
export interface ModelGroupConfig {
  strategy?: string | Strategy | StrategyFactory;
  backends: readonly ModelBackendConfig[];
}

/** Exponential backoff with jitter, used when a request must try an endpoint again. */
export interface BackoffOptions {
  /** First delay, ms. Default 250. */
  initialMs?: number;
  /** Largest delay, ms. Default 8000. */
  maxMs?: number;
  /** Growth per retry. Default 2. */
  multiplier?: number;
  /** Fraction of the delay that is random (0 = none, 1 = full jitter). Default 0.5. */
  jitter?: number;
}

/**
 * Everything a router needs, as a plain object (what `@lb/config-env` produces).
 *
 * @example
 * const router = createRouter({
 *   endpoints: [
 *     { id: 'primary', url: 'https://api.openai.com/v1', apiKey: process.env.OPENAI_API_KEY },
 *     { id: 'backup', url: 'https://my-proxy.example/v1', apiKey: process.env.PROXY_KEY, priority: 2 },
 *   ],
 * });
 */
export interface RouterConfig {
  endpoints: readonly EndpointConfig[];
  /** Strategy name, instance or factory. Default `priority`. Env: `LB_STRATEGY`. */
  strategy?: string | Strategy | StrategyFactory;
  /** Options for built-in strategies. */
  strategyOptions?: Partial<Omit<StrategyOptions, 'random'>>;
  /** Model groups: exposed model name → backends and strategy. */
  models?: Readonly<Record<string, ModelGroupConfig>>;
  /** Fail over to other endpoints at all. Default true. Env: `OPENAI_FALLBACK_ENABLED`. */
  failover?: boolean;
  /** Attempts after the first. Default 3. Env: `OPENAI_MAX_RETRIES`. */
  maxRetries?: number;
  /** Backoff before trying an endpoint this request already tried. Fresh endpoints are tried at once. */
  backoff?: BackoffOptions;
  /** Overall deadline of a request until an attempt succeeds, ms. Default 120000. */
  deadlineMs?: number;
  /** Per-attempt timeout (until the attempt function resolves), ms. Default: none (the transport's own timeouts). */
  timeoutMs?: number;
  /** Cooldown after a 429 without Retry-After, ms; doubles on consecutive 429s up to `maxCooldownMs`. Default 1000. */
  rateLimitCooldownMs?: number;
  /** Longest cooldown after repeated 429s without Retry-After, ms. Default 60000. */
  maxCooldownMs?: number;
  /** Longest Retry-After honoured, ms (longer ones are capped). Default 600000. */
  maxRetryAfterMs?: number;
  /** How long a key rejected with 401/403 stays out of rotation, ms, unless a probe or a hand brings it back. Default 300000. */
  keyRetireMs?: number;
  /** Longest a request waits for a cooling endpoint when none is available now, ms. Default 10000. */
  maxWaitMs?: number;
  /** Weight of the newest latency in the EWMA, 0..1. Default 0.3. */
  ewmaAlpha?: number;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** Randomness in [0, 1). Default {@link fastRandom} (allocation-free, seeded from `Math.random`). */
  random?: () => number;
  /**
   * Takes an endpoint out of rotation after consecutive failures, while no breaker is attached (see
   * {@link OutlierEjectionOptions}). Default: on (5 failures, 30 s, doubling up to 5 min). `false`: off.
   */
  outlierEjection?: boolean | OutlierEjectionOptions;
}

/** The defaults of the numeric options above. */
export const ROUTER_DEFAULTS = {
  maxRetries: 3,
  deadlineMs: 120_000,
  rateLimitCooldownMs: 1000,
  maxCooldownMs: 60_000,
  maxRetryAfterMs: 600_000,
  keyRetireMs: 300_000,
  maxWaitMs: 10_000,
  ewmaAlpha: 0.3,
};

/** Checks the config's shape and numeric options; throws a ConfigError naming the first invalid field. */
export function validateRouterShape(config: RouterConfig): void {
  if (!config || typeof config !== 'object' || !Array.isArray(config.endpoints)) {
    throw new ConfigError('config.endpoints: expected an array of endpoints');
  }
}

/** Checks the numeric options and the outlier ejection; throws a ConfigError naming the first invalid one. */
export function validateRouterNumbers(config: RouterConfig): void {
  for (const [k, v] of [
    ['maxRetries', config.maxRetries],
    ['deadlineMs', config.deadlineMs],
    ['timeoutMs', config.timeoutMs],
    ['keyRetireMs', config.keyRetireMs],
    ['rateLimitCooldownMs', config.rateLimitCooldownMs],
    ['maxWaitMs', config.maxWaitMs],
  ] as const) {
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      throw new ConfigError(`config.${k}: expected a number >= 0, received ${JSON.stringify(v)}`);
    }
  }
  validateOutlierEjection(config.outlierEjection);
}
