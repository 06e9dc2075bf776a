import type { ServerConfig } from '@lb/config-env';
import { SERVER_DEFAULTS } from '@lb/config-env/defaults';
import { ConfigError, type RouterConfig } from '@lb/core';
import type { FallbackConfig, HedgeConfig } from '@lb/exchange';

/**
 * The server's own settings: the `server` section of `@lb/config-env`'s `LbConfig` (every field, its default and env
 * var are documented there). Every field is optional when passed to `createServer`; defaults in
 * {@link DEFAULT_SETTINGS}.
 */
export interface ServerSettings extends Omit<ServerConfig, 'apiKeys'> {
  /** Accepted client keys (`Authorization: Bearer …`, `api-key` or `x-api-key`). Empty: open. Env `LB_API_KEYS`. */
  apiKeys: readonly string[];
}

/** Breaker settings (the `breaker` section of `LbConfig`). */
export interface BreakerSettings {
  enabled: boolean;
  threshold?: number;
  halfOpenAfterMs?: number;
  policy?: 'consecutive' | 'sampling';
}

/** Active health check settings (the `healthCheck` section of `LbConfig`). */
export interface HealthCheckSettings {
  enabled: boolean;
  intervalMs?: number;
  timeoutMs?: number;
}

/**
 * The defaults of {@link ServerSettings}: `@lb/config-env`'s `SERVER_DEFAULTS`, the one declaration (a config from
 * the environment or a file and `createServer`'s own defaults never differ).
 *
 * @example
 * createServer({ router, server: { ...DEFAULT_SETTINGS, port: 9000 } });
 */
export const DEFAULT_SETTINGS: Readonly<ServerSettings> = SERVER_DEFAULTS;

const POSITIVE_MS = [
  'timeoutMs',
  'connectTimeoutMs',
  'streamFirstByteTimeoutMs',
  'streamIdleTimeoutMs',
  'bodyLimitBytes',
  'streamProbationMaxBytes',
  'maxInflightBodyBytes',
  'redisCommandTimeoutMs',
  'maxEventBytes',
] as const;

/** Merges partial settings over the defaults and validates them; throws a `ConfigError` naming the received value. */
export function resolveSettings(partial: Partial<ServerSettings> | undefined): ServerSettings {
  const s: ServerSettings = {
    ...DEFAULT_SETTINGS,
    ...stripUndefined(partial ?? {}),
    clientRateLimit: {
      ...DEFAULT_SETTINGS.clientRateLimit,
      ...stripUndefined(partial?.clientRateLimit ?? {}),
    },
    requestLog: { ...DEFAULT_SETTINGS.requestLog, ...stripUndefined(partial?.requestLog ?? {}) },
  };
  if (typeof s.host !== 'string' || s.host === '') bad('host', s.host, 'a host name or address');
  if (!Number.isInteger(s.port) || s.port < 0 || s.port > 65535) bad('port', s.port, 'an integer 0..65535');
  for (const k of POSITIVE_MS) {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) bad(k, v, 'a number > 0');
  }
  const hold = s.streamProbationHoldMs;
  if (typeof hold !== 'number' || !Number.isFinite(hold) || hold < 0)
    bad('streamProbationHoldMs', hold, 'a number >= 0 (0: off)');
  const longest = s.maxStreamDurationMs;
  if (typeof longest !== 'number' || !Number.isFinite(longest) || longest < 0)
    bad('maxStreamDurationMs', longest, 'a number >= 0 (0: no bound)');
  if (typeof s.responseHeaders !== 'boolean') bad('responseHeaders', s.responseHeaders, 'true or false');
  if (typeof s.shutdownTimeoutMs !== 'number' || !(s.shutdownTimeoutMs >= 0))
    bad('shutdownTimeoutMs', s.shutdownTimeoutMs, 'a number >= 0');
  const rl = s.clientRateLimit;
  if (rl.enabled) {
    if (!Number.isInteger(rl.requests) || rl.requests < 1)
      bad('clientRateLimit.requests', rl.requests, 'an integer >= 1');
    if (typeof rl.windowMs !== 'number' || !(rl.windowMs > 0))
      bad('clientRateLimit.windowMs', rl.windowMs, 'a number > 0');
  }
  if (!Array.isArray(s.apiKeys) || s.apiKeys.some((k) => typeof k !== 'string' || k === ''))
    throw new ConfigError('server.apiKeys: expected an array of non-empty strings');
  if (s.adminKey !== undefined && (typeof s.adminKey !== 'string' || s.adminKey === ''))
    throw new ConfigError('server.adminKey: expected a non-empty string');
  if (
    s.connectionsPerOrigin !== null &&
    !(Number.isInteger(s.connectionsPerOrigin) && s.connectionsPerOrigin > 0)
  )
    bad('connectionsPerOrigin', s.connectionsPerOrigin, 'an integer >= 1 or null');
  if (s.opsPort !== undefined && (!Number.isInteger(s.opsPort) || s.opsPort < 0 || s.opsPort > 65535))
    bad('opsPort', s.opsPort, 'an integer 0..65535 or undefined');
  if (typeof s.opsHost !== 'string' || s.opsHost === '') bad('opsHost', s.opsHost, 'a host name or address');
  if (s.redisUrl !== undefined && (typeof s.redisUrl !== 'string' || !/^rediss?:\/\/./.test(s.redisUrl)))
    // Not echoed: it may carry a password.
    throw new ConfigError('server.redisUrl: expected a redis:// or rediss:// URL');
  if (s.replicas !== undefined && !(Number.isInteger(s.replicas) && s.replicas >= 1))
    bad('replicas', s.replicas, 'an integer >= 1 (or unset: counted by heartbeats in Redis)');
  return s;
}

function bad(key: string, value: unknown, expected: string): never {
  throw new ConfigError(`server.${key}: expected ${expected}, received ${JSON.stringify(value)}`);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.');
}

/** A config as `@lb/config-env`'s `loadConfig` returns it (structurally): what `createServer` accepts. */
export interface ServerConfigInput {
  router: RouterConfig;
  /**
   * Hedged requests (`@lb/exchange`'s `HedgeConfig`; `loadConfig` reads `hedge_after_ms`, `hedge_after`,
   * `hedge_budget`, `hedge_unsafe`, `LB_HEDGE_AFTER_MS`, `LB_HEDGE_BUDGET`). Default: off.
   */
  hedge?: HedgeConfig;
  /**
   * Continue a chat stream that broke after content on another endpoint (`stream_continue`, `LB_STREAM_CONTINUE`).
   * Default false.
   */
  streamContinue?: boolean;
  server?: Partial<ServerSettings>;
  breaker?: BreakerSettings;
  healthCheck?: HealthCheckSettings;
  defaultModel?: string;
  /** Model fallback chains (`[fallbacks]`, `LB_FALLBACKS`…): `@lb/exchange`'s `FallbackConfig`. Default: none. */
  fallbacks?: FallbackConfig;
  /** Virtual keys and prices (`LbConfig.spend`: `[[keys]]`, `[prices."model"]`), for `@lb/spend`. */
  spend?: import('./spend.js').SpendSection;
}
