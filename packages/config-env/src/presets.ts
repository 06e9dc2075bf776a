import { ConfigError } from '@lb/core';
import { OPENAI_DEFAULT_BASE_URL, read } from './env.js';
import { configFromEnv, loadConfig } from './load.js';
import type { BreakerConfig, Env, LbConfig, ServerConfig } from './types.js';
import { compile } from './validate.js';

/** One endpoint for the preset helpers. `key`/`apiKey` and `url`/`baseURL` are synonyms. */
export interface PresetEndpoint {
  key?: string;
  apiKey?: string;
  /** Base URL. Default `https://api.openai.com/v1`. */
  url?: string;
  baseURL?: string;
  /** Identity (stats follow it across reloads). Default `<name>-<n>`. */
  name?: string;
  /** 1 (highest) to 10. Default 1. */
  priority?: number;
  /** Share within its priority. Default 1. */
  weight?: number;
  models?: string[];
  tags?: string[];
  /** Per-attempt timeout, ms. */
  timeoutMs?: number;
  maxRps?: number;
  maxRpm?: number;
  maxTpm?: number;
  enabled?: boolean;
  provider?: string;
}

/** Settings shared by the preset helpers; each maps to the file key of the same meaning. */
export interface PresetOptions {
  /** Default `priority` (`round-robin` for {@link presets}.loadBalanced). */
  strategy?: string;
  /** Attempts after the first. Default 3. */
  maxRetries?: number;
  /** Fail over to other endpoints. Default true. */
  failover?: boolean;
  /** Per-attempt timeout, ms. Default none. */
  timeoutMs?: number;
  defaultModel?: string;
  breaker?: Partial<BreakerConfig>;
  /** Enables active health checks at this interval, ms. */
  healthCheckIntervalMs?: number;
  server?: Partial<Pick<ServerConfig, 'host' | 'port' | 'logLevel' | 'apiKeys' | 'adminKey'>>;
}

function build(
  prefix: string,
  endpoints: readonly (PresetEndpoint | string)[],
  o: PresetOptions,
  label: string,
): LbConfig {
  if (!Array.isArray(endpoints)) {
    throw new ConfigError(`${label}: endpoints must be an array, received ${typeof endpoints}`);
  }
  const doc: Record<string, unknown> = {
    endpoints: endpoints.map((raw, i) => {
      const e: PresetEndpoint = typeof raw === 'string' ? { key: raw } : (raw ?? {});
      return strip({
        name: e.name ?? `${prefix}-${i + 1}`,
        base_url: e.url ?? e.baseURL ?? OPENAI_DEFAULT_BASE_URL,
        api_key: e.key ?? e.apiKey,
        priority: e.priority,
        weight: e.weight,
        models: e.models,
        tags: e.tags,
        timeout: e.timeoutMs,
        max_rps: e.maxRps,
        max_rpm: e.maxRpm,
        max_tpm: e.maxTpm,
        enabled: e.enabled,
        provider: e.provider,
      });
    }),
    ...strip({
      strategy: o.strategy,
      max_retries: o.maxRetries,
      failover: o.failover,
      timeout: o.timeoutMs,
      default_model: o.defaultModel,
    }),
  };
  if (o.breaker)
    doc.breaker = strip({
      enabled: o.breaker.enabled,
      threshold: o.breaker.threshold,
      half_open_after: o.breaker.halfOpenAfterMs,
      policy: o.breaker.policy,
    });
  if (o.healthCheckIntervalMs !== undefined)
    doc.health_check = { enabled: true, interval: o.healthCheckIntervalMs };
  if (o.server)
    doc.server = strip({
      host: o.server.host,
      port: o.server.port,
      log_level: o.server.logLevel,
      api_keys: o.server.apiKeys,
      admin_key: o.server.adminKey,
    });
  return compile(doc, { kind: 'preset', schemes: [prefix] }, {}, label);
}

function strip(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/**
 * A config from the environment (`process.env` by default; no `.env` files; use {@link loadConfig} for those).
 *
 * @example
 * const router = createRouter(createConfigFromEnv().router);
 */
export function createConfigFromEnv(env: Env = process.env): LbConfig {
  return configFromEnv(env);
}

/**
 * Several endpoints under one name: `<name>-1`, `<name>-2`, … (strings are keys on the OpenAI API).
 *
 * @example
 * const config = createMultiConfig('team', [process.env.KEY_A!, { key: process.env.KEY_B!, weight: 2 }], { strategy: 'weighted-random' });
 */
export function createMultiConfig(
  name: string,
  endpoints: readonly (PresetEndpoint | string)[],
  options: PresetOptions = {},
): LbConfig {
  if (typeof name !== 'string' || !name)
    throw new ConfigError(
      `createMultiConfig: name must be a non-empty string, received ${JSON.stringify(name)}`,
    );
  return build(name, endpoints, options, `createMultiConfig(${JSON.stringify(name)})`);
}

/**
 * The official API first, a proxy as backup: `official` (priority 1, `https://api.openai.com/v1`) and `proxy`
 * (priority 2).
 *
 * @example
 * const config = createWithProxy(process.env.OPENAI_API_KEY!, process.env.PROXY_KEY!, 'https://proxy.example/v1');
 */
export function createWithProxy(
  officialKey: string,
  proxyKey: string,
  proxyUrl: string,
  options: PresetOptions & { officialUrl?: string } = {},
): LbConfig {
  return build(
    'proxy',
    [
      {
        name: 'official',
        key: officialKey,
        url: options.officialUrl ?? OPENAI_DEFAULT_BASE_URL,
        priority: 1,
      },
      { name: 'proxy', key: proxyKey, url: proxyUrl, priority: 2 },
    ],
    options,
    'createWithProxy',
  );
}

/** Ready-made configs for common setups. */
export const presets = Object.freeze({
  /**
   * Equal endpoints taking turns (`round-robin`), each failing over to the others.
   *
   * @example
   * presets.loadBalanced([{ key: 'sk-a…', url: 'https://a.example/v1' }, { key: 'sk-b…', url: 'https://b.example/v1' }]);
   */
  loadBalanced(endpoints: readonly (PresetEndpoint | string)[], options: PresetOptions = {}): LbConfig {
    return build('endpoint', endpoints, { strategy: 'round-robin', ...options }, 'presets.loadBalanced');
  },
  /**
   * One key, no failover, no retries, at most 2 requests per second: mistakes show at once and cost little.
   * The key defaults to `OPENAI_API_KEY`, the URL to `OPENAI_BASE_URL` or OpenAI's.
   *
   * @example
   * const router = createRouter(presets.development().router);
   */
  development(
    key?: string,
    options: PresetOptions & { url?: string; maxRps?: number; env?: Env } = {},
  ): LbConfig {
    const env = options.env ?? process.env;
    return build(
      'dev',
      [
        {
          name: 'dev',
          key: key ?? read(env, 'OPENAI_API_KEY'),
          url: options.url ?? read(env, 'OPENAI_BASE_URL') ?? OPENAI_DEFAULT_BASE_URL,
          maxRps: options.maxRps ?? 2,
        },
      ],
      { failover: false, maxRetries: 0, ...options },
      'presets.development',
    );
  },
  /** {@link createConfigFromEnv}. */
  fromEnv: createConfigFromEnv,
  /** {@link loadConfig}: env, `.env` files and `LB_CONFIG`. */
  load: loadConfig,
  /** {@link createMultiConfig}. */
  multi: createMultiConfig,
  /** {@link createWithProxy}. */
  withProxy: createWithProxy,
});
