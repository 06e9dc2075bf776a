import { envText, parseEnvBool } from '@lb/core/internal';
import { FALLBACK_ENV, fallbacksFromEnv } from './fallbacks.js';
import { type ConfigIssue, didYouMean, show } from './issues.js';
import type { Env, EnvScheme } from './types.js';

/** Default base URL of the primary/fallback scheme and of numbered endpoints without `OPENAI_BASE_URL_N`. */
export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';

/** Maps a document path (parts) to the env var its value came from. */
export interface Origin {
  readonly parts: readonly PropertyKey[];
  readonly env: string;
}

export interface EnvDocument {
  doc: Record<string, unknown>;
  origins: Origin[];
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
  schemes: EnvScheme[];
  /** True when any endpoint scheme is present. */
  hasEndpoints: boolean;
}

/** Numbered-endpoint variables (`OPENAI_<FIELD>_N`) → endpoint keys. */
export const NUMBERED_FIELDS = {
  API_KEY: 'api_key',
  BASE_URL: 'base_url',
  NAME: 'name',
  PRIORITY: 'priority',
  WEIGHT: 'weight',
  TIMEOUT: 'timeout',
  MODELS: 'models',
  ENABLED: 'enabled',
  MAX_RPS: 'max_rps',
  MAX_RPM: 'max_rpm',
  MAX_TPM: 'max_tpm',
  BURST: 'burst',
  TAGS: 'tags',
  PROVIDER: 'provider',
} as const;
const NUMBERED = new RegExp(`^OPENAI_(${Object.keys(NUMBERED_FIELDS).join('|')})_(\\d+)$`);
const FALLBACK = /^OPENAI_API_KEY_FALLBACK_(\d+)$/;

/** Global variables → document path; `s` = bare numbers are seconds, `ms` = milliseconds. */
export const GLOBALS: Record<string, { path: string[]; unit?: 's' | 'ms' }> = {
  OPENAI_MODEL: { path: ['default_model'] },
  OPENAI_FALLBACK_ENABLED: { path: ['failover'] },
  OPENAI_MAX_RETRIES: { path: ['max_retries'] },
  OPENAI_BACKOFF_MS: { path: ['backoff', 'initial'], unit: 'ms' },
  LB_STRATEGY: { path: ['strategy'] },
  LB_HEDGE_AFTER_MS: { path: ['hedge_after_ms'] },
  LB_HEDGE_BUDGET: { path: ['hedge_budget'] },
  LB_STREAM_CONTINUE: { path: ['stream_continue'] },
  OPENAI_CIRCUIT_BREAKER: { path: ['breaker', 'enabled'] },
  CIRCUIT_BREAKER_THRESHOLD: { path: ['breaker', 'threshold'] },
  CIRCUIT_BREAKER_TIMEOUT: { path: ['breaker', 'half_open_after'], unit: 's' },
  CIRCUIT_BREAKER_POLICY: { path: ['breaker', 'policy'] },
  OPENAI_HEALTH_CHECK_INTERVAL: { path: ['health_check', 'interval'], unit: 'ms' },
  HEALTH_CHECK_TIMEOUT: { path: ['health_check', 'timeout'], unit: 'ms' },
  HOST: { path: ['server', 'host'] },
  PORT: { path: ['server', 'port'] },
  TIMEOUT: { path: ['server', 'timeout'], unit: 'ms' },
  CONNECT_TIMEOUT: { path: ['server', 'connect_timeout'], unit: 'ms' },
  STREAM_FIRST_BYTE_TIMEOUT: { path: ['server', 'stream_first_byte_timeout'], unit: 'ms' },
  STREAM_IDLE_TIMEOUT: { path: ['server', 'stream_idle_timeout'], unit: 'ms' },
  STREAM_PROBATION_HOLD: { path: ['server', 'stream_probation_hold'], unit: 'ms' },
  STREAM_PROBATION_MAX_BYTES: { path: ['server', 'stream_probation_max_bytes'] },
  LB_MAX_SSE_EVENT_BYTES: { path: ['server', 'max_event_bytes'] },
  LB_MAX_STREAM_DURATION: { path: ['server', 'max_stream_duration'], unit: 'ms' },
  BODY_LIMIT: { path: ['server', 'body_limit'] },
  RATE_LIMIT_ENABLED: { path: ['server', 'rate_limit', 'enabled'] },
  RATE_LIMIT_REQUESTS: { path: ['server', 'rate_limit', 'requests'] },
  RATE_LIMIT_WINDOW: { path: ['server', 'rate_limit', 'window'], unit: 'ms' },
  LOG_LEVEL: { path: ['server', 'log_level'] },
  REQUEST_LOG_ENABLED: { path: ['server', 'request_log', 'enabled'] },
  REQUEST_LOG_PATH: { path: ['server', 'request_log', 'path'] },
  METRICS_ENABLED: { path: ['server', 'metrics_enabled'] },
  LB_RESPONSE_HEADERS: { path: ['server', 'response_headers'] },
  SHUTDOWN_TIMEOUT: { path: ['server', 'shutdown_timeout'], unit: 'ms' },
  LB_API_KEYS: { path: ['server', 'api_keys'] },
  LB_ADMIN_KEY: { path: ['server', 'admin_key'] },
  LB_REDIS_URL: { path: ['server', 'redis_url'] },
  LB_OPS_PORT: { path: ['server', 'ops_port'] },
  LB_OPS_HOST: { path: ['server', 'ops_host'] },
  LB_MAX_INFLIGHT_BODY_BYTES: { path: ['server', 'max_inflight_body_bytes'] },
  LB_REDIS_COMMAND_TIMEOUT: { path: ['server', 'redis_command_timeout'], unit: 'ms' },
  LB_REPLICAS: { path: ['server', 'replicas'] },
  HTTP2: { path: ['server', 'http2'] },
  LB_PLUGINS: { path: ['plugins'] },
};

/** Every variable this package reads (numbered ones with an `_N` suffix). */
export const ENV_VARS: readonly string[] = [
  ...Object.keys(NUMBERED_FIELDS).map((k) => `OPENAI_${k}_N`),
  'OPENAI_API_KEY',
  'OPENAI_API_KEY_FALLBACK_N',
  'OPENAI_BASE_URL',
  'OPENAI_KEY_ROTATION_ENABLED',
  'UPSTREAM_URL',
  'UPSTREAM_API_KEY',
  'LB_CONFIG',
  ...Object.keys(GLOBALS),
  ...Object.keys(FALLBACK_ENV),
];

const KNOWN = new Set(ENV_VARS);
const WATCHED_PREFIX = /^(OPENAI_|LB_|UPSTREAM_|CIRCUIT_BREAKER_|RATE_LIMIT_|REQUEST_LOG_|HEALTH_CHECK_)/;
/** Variables other tools read under our prefixes: never reported as typos. */
const FOREIGN = new Set([
  'OPENAI_ORG_ID',
  'OPENAI_ORGANIZATION',
  'OPENAI_PROJECT_ID',
  'OPENAI_API_VERSION',
  'OPENAI_LOG',
]);

/** A trimmed value; empty strings count as unset (`@lb/core/internal`'s `envText`, every package's rule). */
export function read(env: Env, name: string): string | undefined {
  return envText(env, name);
}

/**
 * True when the environment names any endpoint: `OPENAI_API_KEY`, `OPENAI_API_KEY_N`, `OPENAI_BASE_URL_N`,
 * `UPSTREAM_URL`, or a config file in `LB_CONFIG`. A server prints help (or runs a demo) otherwise.
 *
 * @example
 * if (!isConfigured(process.env)) console.log('Set OPENAI_API_KEY or UPSTREAM_URL to start.');
 */
export function isConfigured(env: Env = process.env): boolean {
  if (read(env, 'OPENAI_API_KEY') || read(env, 'UPSTREAM_URL') || read(env, 'LB_CONFIG')) return true;
  for (const k of Object.keys(env)) {
    if (/^OPENAI_(API_KEY|BASE_URL)_\d+$/.test(k) && read(env, k)) return true;
  }
  return false;
}

/**
 * Reads the env schemes into a config document (the file format), remembering which variable each value came
 * from so validation errors name the variable. Never throws: every problem is collected.
 */
export function envToDocument(env: Env, opts: { endpoints?: boolean } = {}): EnvDocument {
  const doc: Record<string, unknown> = {};
  const origins: Origin[] = [];
  const errors: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const schemes: EnvScheme[] = [];
  const endpoints: Record<string, unknown>[] = [];
  const wantEndpoints = opts.endpoints ?? true;

  const bool = (name: string): boolean | undefined => {
    const v = read(env, name);
    if (v === undefined) return undefined;
    const b = parseEnvBool(v);
    if (b !== undefined) return b;
    errors.push({ path: name, message: `expected true or false, received ${show(v)}` });
    return undefined;
  };
  const add = (ep: Record<string, unknown>, field: string, name: string, value: unknown) => {
    if (value === undefined) return;
    ep[field] = value;
    origins.push({ parts: ['endpoints', endpoints.length, field], env: name });
  };
  const sharedBaseUrl = read(env, 'OPENAI_BASE_URL');

  // Scheme 1: numbered endpoints.
  const numbered = new Map<number, Map<string, string>>();
  for (const k of Object.keys(env)) {
    const m = NUMBERED.exec(k);
    if (!m || read(env, k) === undefined) continue;
    const n = Number(m[2]);
    let vars = numbered.get(n);
    if (!vars) numbered.set(n, (vars = new Map()));
    vars.set(m[1], k);
  }
  const ns = [...numbered.keys()].sort((a, b) => a - b);
  for (const n of ns) {
    const vars = numbered.get(n) as Map<string, string>;
    const keyVar = `OPENAI_API_KEY_${n}`;
    const urlVar = `OPENAI_BASE_URL_${n}`;
    if (!vars.has('API_KEY') && !vars.has('BASE_URL')) {
      for (const name of vars.values())
        errors.push({ path: name, message: `set, but endpoint ${n} has neither ${keyVar} nor ${urlVar}` });
      continue;
    }
    if (!vars.has('API_KEY')) {
      errors.push({ path: keyVar, message: `missing: endpoint ${n} has ${urlVar} but no key` });
      continue;
    }
    if (!wantEndpoints) continue;
    const ep: Record<string, unknown> = {};
    origins.push({ parts: ['endpoints', endpoints.length], env: keyVar });
    const custom = read(env, `OPENAI_NAME_${n}`);
    add(ep, 'name', custom ? `OPENAI_NAME_${n}` : keyVar, custom ?? `openai-${n}`);
    if (vars.has('BASE_URL')) add(ep, 'base_url', urlVar, read(env, urlVar));
    else add(ep, 'base_url', 'OPENAI_BASE_URL', sharedBaseUrl ?? OPENAI_DEFAULT_BASE_URL);
    for (const [suffix, name] of vars) {
      if (suffix === 'NAME' || suffix === 'BASE_URL') continue;
      add(ep, NUMBERED_FIELDS[suffix as keyof typeof NUMBERED_FIELDS], name, read(env, name));
    }
    endpoints.push(ep);
  }
  if (endpoints.length) schemes.push('numbered');

  // Scheme 2: primary key plus fallback keys on one base URL.
  const primary = read(env, 'OPENAI_API_KEY');
  const fallbacks = Object.keys(env)
    .map((k) => [k, FALLBACK.exec(k)] as const)
    .filter(([k, m]) => m && read(env, k) !== undefined)
    .sort((a, b) => Number(a[1]?.[1]) - Number(b[1]?.[1]))
    .map(([k]) => k);
  const rotation = bool('OPENAI_KEY_ROTATION_ENABLED');
  if (!primary) {
    for (const k of fallbacks) errors.push({ path: k, message: 'set, but OPENAI_API_KEY is not' });
  } else if (wantEndpoints) {
    const keys = [
      ['OPENAI_API_KEY', 'openai-primary'],
      ...fallbacks.map((k) => [k, `openai-fallback-${k.slice(24)}`]),
    ];
    keys.forEach(([name, id], rank) => {
      const ep: Record<string, unknown> = {};
      origins.push({ parts: ['endpoints', endpoints.length], env: name });
      add(ep, 'name', name, id);
      add(ep, 'base_url', 'OPENAI_BASE_URL', sharedBaseUrl ?? OPENAI_DEFAULT_BASE_URL);
      add(ep, 'api_key', name, read(env, name));
      add(ep, 'priority', name, rotation ? 1 : Math.min(10, rank + 1));
      endpoints.push(ep);
    });
    schemes.push('fallback-keys');
  }

  // Scheme 3: one upstream.
  const upstream = read(env, 'UPSTREAM_URL');
  if (upstream && wantEndpoints) {
    const ep: Record<string, unknown> = {};
    origins.push({ parts: ['endpoints', endpoints.length], env: 'UPSTREAM_URL' });
    add(ep, 'name', 'UPSTREAM_URL', 'upstream');
    add(ep, 'base_url', 'UPSTREAM_URL', upstream);
    add(ep, 'api_key', 'UPSTREAM_API_KEY', read(env, 'UPSTREAM_API_KEY') ?? '');
    endpoints.push(ep);
    schemes.push('upstream');
  } else if (!upstream && read(env, 'UPSTREAM_API_KEY')) {
    errors.push({ path: 'UPSTREAM_API_KEY', message: 'set, but UPSTREAM_URL is not' });
  }
  if (endpoints.length) doc.endpoints = endpoints;

  // Globals.
  for (const [name, { path, unit }] of Object.entries(GLOBALS)) {
    let v: unknown = read(env, name);
    if (v === undefined) continue;
    if (unit && /^\d+(\.\d+)?$/.test(v as string)) {
      const n = Number(v);
      if (unit === 's') v = n * 1000;
      else if (n > 0 && n < 100 && name !== 'OPENAI_BACKOFF_MS')
        warnings.push({
          path: name,
          message: `${n} ms is very short; durations here are in ms (write "${n}s" for seconds)`,
        });
    }
    if (name === 'OPENAI_HEALTH_CHECK_INTERVAL' && v === '0') {
      setAt(doc, ['health_check', 'enabled'], false);
      origins.push({ parts: ['health_check', 'enabled'], env: name });
      continue;
    }
    setAt(doc, path, v);
    origins.push({ parts: path, env: name });
  }
  if (read(env, 'OPENAI_HEALTH_CHECK_INTERVAL') && read(env, 'OPENAI_HEALTH_CHECK_INTERVAL') !== '0') {
    setAt(doc, ['health_check', 'enabled'], true);
  }
  if (read(env, 'REQUEST_LOG_PATH') && read(env, 'REQUEST_LOG_ENABLED') === undefined) {
    setAt(doc, ['server', 'request_log', 'enabled'], true);
  }
  if (rotation && primary && read(env, 'LB_STRATEGY') === undefined) {
    setAt(doc, ['strategy_options', 'within_group'], 'round-robin');
    origins.push({ parts: ['strategy_options'], env: 'OPENAI_KEY_ROTATION_ENABLED' });
  }

  const chains = fallbacksFromEnv((n) => read(env, n), errors);
  if (chains !== undefined) {
    doc.fallbacks = chains;
    origins.push({ parts: ['fallbacks'], env: 'LB_FALLBACKS' });
  }

  // Typos among our prefixes.
  for (const k of Object.keys(env)) {
    if (!WATCHED_PREFIX.test(k) || KNOWN.has(k) || FOREIGN.has(k) || NUMBERED.test(k) || FALLBACK.test(k))
      continue;
    const m = /^(.*)_(\d+)$/.exec(k);
    const hint = m
      ? didYouMean(`${m[1]}_N`, ENV_VARS, false).replace('_N?', `_${m[2]}?`)
      : didYouMean(k, ENV_VARS, false);
    if (hint) warnings.push({ path: k, message: `unknown variable (ignored)${hint}` });
  }

  return { doc, origins, errors, warnings, schemes, hasEndpoints: endpoints.length > 0 };
}

/** Sets `doc[path]`, creating tables on the way. */
export function setAt(doc: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let o = doc;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i];
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[path[path.length - 1]] = value;
}
