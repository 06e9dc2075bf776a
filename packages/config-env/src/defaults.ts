import type { ServerConfig } from './types.js';

/**
 * The one declaration of the server's defaults: a config read from the environment or a file gets them here, and
 * `@lb/server`'s `createServer` fills what its options leave out from this same object (its `DEFAULT_SETTINGS`).
 * Settings without a default (`adminKey`, `redisUrl`, `opsPort`, `replicas`) are absent. This module imports nothing
 * at run time, so that `@lb/server` can read it (`@lb/config-env/defaults`) without loading the parser and schema.
 *
 * @example
 * import { SERVER_DEFAULTS } from '@lb/config-env';
 * SERVER_DEFAULTS.port; // 8080
 */
export const SERVER_DEFAULTS: Readonly<ServerConfig> = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  timeoutMs: 60_000,
  connectTimeoutMs: 10_000,
  streamFirstByteTimeoutMs: 30_000,
  streamIdleTimeoutMs: 60_000,
  streamProbationHoldMs: 10_000,
  streamProbationMaxBytes: 64 * 1024 * 1024,
  maxEventBytes: 8 * 1024 * 1024,
  maxStreamDurationMs: 30 * 60_000,
  bodyLimitBytes: 25 * 1024 * 1024,
  clientRateLimit: Object.freeze({ enabled: false, requests: 60, windowMs: 60_000 }),
  logLevel: 'info',
  requestLog: Object.freeze({ enabled: false }),
  metricsEnabled: true,
  responseHeaders: true,
  shutdownTimeoutMs: 30_000,
  apiKeys: Object.freeze([]) as unknown as string[],
  http2: true,
  connectionsPerOrigin: null,
  opsHost: '127.0.0.1',
  maxInflightBodyBytes: 128 * 1024 * 1024,
  redisCommandTimeoutMs: 100,
});
