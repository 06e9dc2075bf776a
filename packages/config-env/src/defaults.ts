import { STREAM_DEFAULTS } from '@lb/core/internal';
import type { ServerConfig } from './types.js';

/**
 * The one declaration of the server's defaults: a config read from the environment or a file gets them here, and
 * `@lb/server`'s `createServer` fills what its options leave out from this same object (its `DEFAULT_SETTINGS`).
 * Settings without a default (`adminKey`, `redisUrl`, `opsPort`, `replicas`) are absent. This module loads no parser and
 * no schema, so that `@lb/server` can read it (`@lb/config-env/defaults`) at run time.
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
  // The stream settings, shared with @lb/openai-adapter (which cannot import this package).
  ...STREAM_DEFAULTS,
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
