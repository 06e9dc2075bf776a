// Validation of `createObservability`'s arguments: a `ConfigError` naming the received value for each bad one.
import type { Router } from '@lb/core';
import { ConfigError } from '@lb/core';
import { LEVELS } from './logger.js';
import type { ObservabilityOptions } from './types.js';

/** Checks the router and options; returns the settled values (metrics on, log level, request log). */
export function validateObservability(
  router: Router,
  options: ObservabilityOptions,
): { metricsEnabled: boolean; level: string; requestLog: { enabled: boolean; path?: string } } {
  if (!router || typeof router.on !== 'function' || typeof router.snapshot !== 'function') {
    throw new ConfigError(
      `createObservability: expected a router from @lb/core, received ${describe(router)}`,
    );
  }
  if (options === null || typeof options !== 'object') {
    throw new ConfigError(`createObservability: options must be an object, received ${describe(options)}`);
  }
  const metricsEnabled = options.metricsEnabled ?? true;
  if (typeof metricsEnabled !== 'boolean') {
    throw new ConfigError(
      `createObservability: metricsEnabled must be a boolean, received ${describe(metricsEnabled)}`,
    );
  }
  const level = (options.logLevel ?? 'info').toLowerCase();
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(
      `createObservability: logLevel must be one of ${LEVELS.join(', ')}, received ${describe(options.logLevel)}`,
    );
  }
  const rl = options.requestLog ?? { enabled: false };
  if (typeof rl !== 'object' || typeof rl.enabled !== 'boolean') {
    throw new ConfigError(
      `createObservability: requestLog must be { enabled: boolean, path? }, received ${describe(rl)}`,
    );
  }
  if (rl.path !== undefined && (typeof rl.path !== 'string' || rl.path === '')) {
    throw new ConfigError(
      `createObservability: requestLog.path must be a non-empty string, received ${describe(rl.path)}`,
    );
  }
  if (options.debug !== undefined && typeof options.debug !== 'string') {
    throw new ConfigError(`createObservability: debug must be a string, received ${describe(options.debug)}`);
  }
  if (options.logDestination !== undefined && typeof options.logDestination?.write !== 'function') {
    throw new ConfigError(
      `createObservability: logDestination must be a writable stream, received ${describe(options.logDestination)}`,
    );
  }
  for (const k of ['breaker', 'rateLimit', 'healthChecks'] as const) {
    const h = options[k];
    if (h !== undefined && typeof h?.snapshot !== 'function') {
      throw new ConfigError(
        `createObservability: ${k} must have a snapshot() method, received ${describe(h)}`,
      );
    }
  }
  return { metricsEnabled, level, requestLog: rl };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'object') return `an object (${Object.prototype.toString.call(v)})`;
  return `${typeof v} ${String(v)}`;
}
