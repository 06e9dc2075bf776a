import type { EndpointConfig, ModelGroupConfig, RouterConfig } from '@lb/core';
import { maskKey, redact } from '@lb/core';
import { SERVER_DEFAULTS } from './defaults.js';
import { type Origin, setAt } from './env.js';
import { ConfigValidationError } from './errors.js';
import { buildFallbacks } from './fallbacks.js';
import { interpolate } from './interpolate.js';
import { type ConfigIssue, didYouMean, formatPath, show } from './issues.js';
import { type ConfigDocument, documentSchema, normalizeStrategy, UNKNOWN_KEYS } from './schema.js';
import { buildSpend, checkSpend, spendSecrets, toPriceConfig } from './spend.js';
import type {
  BreakerConfig,
  ConfigSource,
  Env,
  HealthCheckConfig,
  HedgeOptionsConfig,
  HedgeSettings,
  LbConfig,
  ServerConfig,
} from './types.js';

/** The outcome of {@link validateConfig}. */
export interface ValidationResult {
  /** True when there are no errors (warnings allowed). */
  valid: boolean;
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
}

export interface PipelineOptions {
  /** Variables for `${VAR}`; undefined: no interpolation. */
  env?: Env;
  /** Env var names for document paths (env schemes). */
  origins?: readonly Origin[];
  /** Issues found before (env parsing). */
  errors?: ConfigIssue[];
  warnings?: ConfigIssue[];
  /** Whether a config without endpoints is an error (true) or a warning. */
  requireEndpoints?: boolean;
  /** Message when there are no endpoints. */
  noEndpointsMessage?: string;
}

interface PipelineResult {
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
  doc?: ConfigDocument;
  secrets: string[];
}

const isTable = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Runs the one validator every source goes through: interpolation, schema, cross-checks, path naming. */
export function runPipeline(raw: unknown, opts: PipelineOptions = {}): PipelineResult {
  const errors: ConfigIssue[] = [...(opts.errors ?? [])];
  const warnings: ConfigIssue[] = [...(opts.warnings ?? [])];
  const origins: Origin[] = [...(opts.origins ?? [])];
  if (!isTable(raw)) {
    errors.push({ path: '(root)', message: `expected a table of settings, received ${show(raw)}` });
    return { errors, warnings, secrets: [] };
  }
  let doc: Record<string, unknown> = { ...raw };
  delete doc.$schema;
  if (opts.env) doc = interpolate(doc, opts.env, errors) as Record<string, unknown>;

  // `[providers.<name>]` tables (Berry's layout) become a list; errors keep naming `providers.<name>`.
  if (isTable(doc.providers)) {
    const list: unknown[] = [];
    for (const [name, p] of Object.entries(doc.providers)) {
      origins.push({ parts: ['providers', list.length], env: formatPath(['providers', name]) });
      list.push(isTable(p) && p.name === undefined ? { name, ...p } : p);
    }
    doc.providers = list;
  }

  // With plugins listed, a strategy name no built-in knows may be one a plugin registers: it passes here as it is, and
  // lb-server checks it once it has loaded the plugins (they are code: this package never runs them).
  const deferred = deferPluginStrategies(doc);
  const parsed = documentSchema.safeParse(doc);
  if (parsed.success) for (const [set, name] of deferred) set(parsed.data as Record<string, unknown>, name);
  if (!parsed.success) {
    for (const iss of parsed.error.issues) {
      if (iss.message.startsWith(UNKNOWN_KEYS)) {
        for (const [k, m] of JSON.parse(iss.message.slice(UNKNOWN_KEYS.length)) as [string, string][])
          errors.push({ path: formatPath([...iss.path, k]), message: m });
      } else errors.push({ path: formatPath(iss.path), message: iss.message });
    }
  }
  crossCheck(doc, errors, warnings, opts);
  checkSpend(doc, errors, warnings);

  const order = documentOrder(doc);
  const rank = (i: ConfigIssue) => {
    for (let p = i.path; p; p = p.replace(/(\.[^.[]*|\[[^\]]*\])$/, '')) {
      const r = order.get(p);
      if (r !== undefined) return r;
      if (!/[.[]/.test(p)) break;
    }
    return -1;
  };
  const byDocument = (list: ConfigIssue[]) =>
    list
      .map((i, n) => ({ i, n, r: rank(i) }))
      .sort((x, y) => x.r - y.r || x.n - y.n)
      .map((x) => x.i);
  errors.splice(0, errors.length, ...byDocument(errors));
  warnings.splice(0, warnings.length, ...byDocument(warnings));
  const secrets = collectSecrets(doc);
  const rename = (i: ConfigIssue): ConfigIssue => ({
    path: renamePath(i.path, origins),
    message: redact(i.message, secrets),
  });
  return {
    errors: dedupe(errors.map(rename)),
    warnings: dedupe(warnings.map(rename)),
    doc: parsed.success && errors.length === 0 ? parsed.data : undefined,
    secrets,
  };
}

/** Each path of the document → its position in a depth-first walk (the order a reader sees it in). */
function documentOrder(doc: unknown): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (v: unknown, path: PropertyKey[]) => {
    out.set(formatPath(path), out.size);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (isTable(v)) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(doc, []);
  return out;
}

function dedupe(list: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return list.filter((i) => {
    const k = `${i.path}\n${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Longest origin whose path is a prefix of `path` names the source instead. */
function renamePath(path: string, origins: readonly Origin[]): string {
  let best: { len: number; env: string; rest: string } | undefined;
  for (const o of origins) {
    const p = formatPath(o.parts);
    if (path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`)) {
      if (!best || p.length > best.len) best = { len: p.length, env: o.env, rest: path.slice(p.length) };
    }
  }
  if (!best) return path;
  // An env var stands for the whole value; a renamed table (providers.x) keeps the rest of the path.
  return /^[A-Z][A-Z0-9_]*$/.test(best.env) ? best.env : best.env + best.rest;
}

function collectSecrets(doc: Record<string, unknown>): string[] {
  const out: string[] = [];
  const eps = [doc.endpoints, doc.providers].flatMap((l) => (Array.isArray(l) ? l : []));
  for (const e of eps) {
    if (!isTable(e)) continue;
    if (typeof e.api_key === 'string') out.push(e.api_key);
    if (isTable(e.headers)) for (const v of Object.values(e.headers)) if (typeof v === 'string') out.push(v);
  }
  if (isTable(doc.server)) {
    const s = doc.server;
    if (typeof s.admin_key === 'string') out.push(s.admin_key);
    if (typeof s.redis_url === 'string') {
      out.push(s.redis_url);
      try {
        const pw = decodeURIComponent(new URL(s.redis_url).password);
        if (pw) out.push(pw);
      } catch {}
    }
    if (Array.isArray(s.api_keys)) {
      for (const k of s.api_keys) if (typeof k === 'string') out.push(k);
    } else if (typeof s.api_keys === 'string') out.push(...s.api_keys.split(',').map((k) => k.trim()));
  }
  out.push(...spendSecrets(doc));
  return out.filter((s) => s.length >= 4);
}

const LOCAL = /^(localhost|127\.|\[::1\]|0\.0\.0\.0|host\.docker\.internal)/;

/** Checks that span several values: identity, references, keys. Tolerant of values the schema rejects. */
function crossCheck(
  doc: Record<string, unknown>,
  errors: ConfigIssue[],
  warnings: ConfigIssue[],
  opts: PipelineOptions,
): void {
  const eps: { path: PropertyKey[]; e: Record<string, unknown> }[] = [];
  for (const key of ['endpoints', 'providers'] as const) {
    const l = doc[key];
    if (Array.isArray(l)) l.forEach((e, i) => isTable(e) && eps.push({ path: [key, i], e }));
  }
  if (eps.length === 0) {
    const issue = {
      path: 'endpoints',
      message: opts.noEndpointsMessage ?? 'no endpoints configured: add at least one [[endpoints]] entry',
    };
    (opts.requireEndpoints === false ? warnings : errors).push(issue);
  }
  const ids = new Map<string, string>();
  const byName = new Map<string, string>();
  const enabled = new Map<string, boolean>();
  const seenUpstreams = new Map<string, string>();
  for (const { path, e } of eps) {
    const id = typeof e.id === 'string' ? e.id : typeof e.name === 'string' ? e.name : undefined;
    if (id !== undefined) {
      const prev = ids.get(id);
      const where = formatPath([...path, typeof e.id === 'string' ? 'id' : 'name']);
      if (prev !== undefined)
        errors.push({ path: where, message: `duplicate name ${show(id)} (also used by ${prev})` });
      else ids.set(id, formatPath(path));
      if (typeof e.name === 'string') byName.set(e.name, id);
      enabled.set(id, e.enabled !== false && e.enabled !== 'false');
    }
    if (e.api_key === undefined) {
      errors.push({
        path: formatPath([...path, 'api_key']),
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the message shows the file syntax.
        message: 'missing: set the key (or "${ENV_VAR}"), or api_key = "" for an upstream that needs none',
      });
    }
    if (e.timeout !== undefined && e.timeout_seconds !== undefined) {
      errors.push({
        path: formatPath([...path, 'timeout_seconds']),
        message: 'set both timeout and timeout_seconds; keep one',
      });
    }
    if (typeof e.base_url === 'string') {
      const host = e.base_url.replace(/^https?:\/\//, '');
      if (e.base_url.startsWith('http://') && e.api_key && !LOCAL.test(host)) {
        warnings.push({
          path: formatPath([...path, 'base_url']),
          message: `sends its key unencrypted over http:// to ${show(host.split('/')[0])}`,
        });
      }
      if (typeof e.api_key === 'string' && e.api_key) {
        const k = `${e.base_url.replace(/\/+$/, '')}\n${e.api_key}`;
        const prev = seenUpstreams.get(k);
        if (prev)
          warnings.push({
            path: formatPath(path),
            message: `same base_url and key as ${prev} (key ${maskKey(e.api_key)}): they share one upstream quota`,
          });
        else seenUpstreams.set(k, formatPath(path));
      }
    }
  }
  if (eps.length > 0 && [...enabled.values()].every((v) => !v)) {
    warnings.push({ path: 'endpoints', message: 'every endpoint is disabled: no request can be served' });
  }

  if (isTable(doc.models)) {
    for (const [model, g] of Object.entries(doc.models)) {
      if (!isTable(g)) continue;
      const gp: PropertyKey[] = ['models', model];
      const listKey = g.backends !== undefined ? 'backends' : 'providers';
      const list = g[listKey];
      if (g.backends !== undefined && g.providers !== undefined) {
        errors.push({
          path: formatPath([...gp, 'providers']),
          message: 'set both backends and providers; keep one',
        });
      }
      if (list === undefined || (Array.isArray(list) && list.length === 0)) {
        errors.push({ path: formatPath([...gp, 'backends']), message: 'missing: list at least one backend' });
        continue;
      }
      if (!Array.isArray(list)) continue;
      list.forEach((b, i) => {
        if (!isTable(b)) return;
        const bp = [...gp, listKey, i];
        const refKey = b.endpoint !== undefined ? 'endpoint' : 'provider';
        const ref = b[refKey];
        if (b.endpoint !== undefined && b.provider !== undefined) {
          errors.push({
            path: formatPath([...bp, 'provider']),
            message: 'set both endpoint and provider; keep one',
          });
        } else if (ref === undefined) {
          errors.push({
            path: formatPath([...bp, 'endpoint']),
            message: 'missing: name the endpoint this backend uses',
          });
        } else if (typeof ref === 'string' && !ids.has(ref) && !byName.has(ref)) {
          errors.push({
            path: formatPath([...bp, refKey]),
            message: `unknown endpoint ${show(ref)}${didYouMean(ref, ids.keys()).replace(/^; (.*)$/, ' ($1)')}; known: ${[...ids.keys()].join(', ') || 'none'}`,
          });
        } else if (
          typeof ref === 'string' &&
          b.enabled !== false &&
          enabled.get(byName.get(ref) ?? ref) === false
        ) {
          warnings.push({ path: formatPath([...bp, refKey]), message: `endpoint ${show(ref)} is disabled` });
        }
      });
    }
  }
}

/** Builds the frozen `LbConfig` from a validated document. */
export function buildConfig(
  doc: ConfigDocument,
  source: ConfigSource,
  warnings: readonly ConfigIssue[],
): LbConfig {
  const eps = [...(doc.endpoints ?? []), ...(doc.providers ?? [])];
  const nameToId = new Map<string, string>();
  const endpoints: EndpointConfig[] = eps.map((e) => {
    const id = e.id ?? e.name;
    nameToId.set(e.name, id);
    const limits: { rps?: number; rpm?: number; tpm?: number; burst?: number } = {};
    if (e.max_rps) limits.rps = e.max_rps;
    if (e.max_rpm) limits.rpm = e.max_rpm;
    if (e.max_tpm) limits.tpm = e.max_tpm;
    if (e.burst) limits.burst = e.burst;
    const meta = { ...(e.meta ?? {}) };
    if (e.max_retries !== undefined) meta.maxRetries = e.max_retries;
    if (e.price !== undefined) meta.price = toPriceConfig(e.price);
    const ec: EndpointConfig = {
      id,
      name: e.name,
      url: e.base_url.replace(/\/+$/, ''),
      apiKey: e.api_key || undefined,
      priority: e.priority ?? 1,
      weight: e.weight ?? 1,
      enabled: e.enabled ?? true,
      provider: e.provider ?? 'openai',
      ...(e.models?.length ? { models: e.models } : {}),
      ...(e.model_map ? { modelMap: e.model_map } : {}),
      ...(e.tags?.length ? { tags: e.tags } : {}),
      ...(e.timeout !== undefined || e.timeout_seconds !== undefined
        ? { timeoutMs: e.timeout ?? (e.timeout_seconds as number) * 1000 }
        : {}),
      ...(e.headers ? { headers: e.headers } : {}),
      ...(e.health_check ? { healthCheck: e.health_check } : {}),
      ...(Object.keys(limits).length ? { limits } : {}),
      ...(Object.keys(meta).length ? { meta } : {}),
    };
    return ec;
  });

  let models: Record<string, ModelGroupConfig> | undefined;
  for (const [key, g] of Object.entries(doc.models ?? {})) {
    if (g.enabled === false) continue;
    const backends = (g.backends ?? g.providers ?? [])
      .filter((b) => b.enabled !== false)
      .map((b) => {
        const ref = (b.endpoint ?? b.provider) as string;
        return {
          endpoint: nameToId.get(ref) ?? ref,
          ...(b.model !== undefined ? { model: b.model } : {}),
          ...(b.weight !== undefined ? { weight: b.weight } : {}),
          ...(b.priority !== undefined ? { priority: b.priority } : {}),
          ...(b.tags?.length ? { tags: b.tags } : {}),
        };
      });
    if (!backends.length) continue;
    models ??= {};
    models[g.name ?? key] = {
      ...(g.strategy !== undefined ? { strategy: normalizeStrategy(g.strategy) ?? g.strategy } : {}),
      backends,
    };
  }

  const router: RouterConfig = {
    endpoints,
    strategy: doc.strategy !== undefined ? (normalizeStrategy(doc.strategy) ?? doc.strategy) : 'priority',
    ...(doc.strategy_options
      ? {
          strategyOptions: {
            ...(doc.strategy_options.within_group ? { withinGroup: doc.strategy_options.within_group } : {}),
            ...(doc.strategy_options.exploration_rate !== undefined
              ? { explorationRate: doc.strategy_options.exploration_rate }
              : {}),
          },
        }
      : {}),
    ...(models ? { models } : {}),
    ...(doc.failover !== undefined ? { failover: doc.failover } : {}),
    ...(doc.max_retries !== undefined ? { maxRetries: doc.max_retries } : {}),
    ...(doc.backoff
      ? {
          backoff: {
            ...(doc.backoff.initial !== undefined ? { initialMs: doc.backoff.initial } : {}),
            ...(doc.backoff.max !== undefined ? { maxMs: doc.backoff.max } : {}),
            ...(doc.backoff.multiplier !== undefined ? { multiplier: doc.backoff.multiplier } : {}),
            ...(doc.backoff.jitter !== undefined ? { jitter: doc.backoff.jitter } : {}),
          },
        }
      : {}),
    ...(doc.deadline !== undefined ? { deadlineMs: doc.deadline } : {}),
    ...(doc.timeout !== undefined ? { timeoutMs: doc.timeout } : {}),
    ...(doc.rate_limit_cooldown !== undefined ? { rateLimitCooldownMs: doc.rate_limit_cooldown } : {}),
    ...(doc.max_cooldown !== undefined ? { maxCooldownMs: doc.max_cooldown } : {}),
    ...(doc.max_retry_after !== undefined ? { maxRetryAfterMs: doc.max_retry_after } : {}),
    ...(doc.key_retire !== undefined ? { keyRetireMs: doc.key_retire } : {}),
    ...(doc.max_wait !== undefined ? { maxWaitMs: doc.max_wait } : {}),
  };

  const b = doc.breaker ?? {};
  const breaker: BreakerConfig = {
    enabled: b.enabled ?? true,
    threshold: b.threshold ?? 5,
    halfOpenAfterMs: b.half_open_after ?? 60_000,
    policy: b.policy ?? 'consecutive',
  };
  const h = doc.health_check ?? {};
  const healthCheck: HealthCheckConfig = {
    enabled: h.enabled ?? h.interval !== undefined,
    intervalMs: h.interval ?? 30_000,
    timeoutMs: h.timeout ?? 5_000,
  };
  const s = doc.server ?? {};
  const d = SERVER_DEFAULTS;
  const server: ServerConfig = {
    host: s.host ?? d.host,
    port: s.port ?? d.port,
    timeoutMs: s.timeout ?? d.timeoutMs,
    connectTimeoutMs: s.connect_timeout ?? d.connectTimeoutMs,
    streamFirstByteTimeoutMs: s.stream_first_byte_timeout ?? d.streamFirstByteTimeoutMs,
    streamIdleTimeoutMs: s.stream_idle_timeout ?? d.streamIdleTimeoutMs,
    streamProbationHoldMs: s.stream_probation_hold ?? d.streamProbationHoldMs,
    streamProbationMaxBytes: s.stream_probation_max_bytes ?? d.streamProbationMaxBytes,
    maxEventBytes: s.max_event_bytes ?? d.maxEventBytes,
    maxStreamDurationMs: s.max_stream_duration ?? d.maxStreamDurationMs,
    bodyLimitBytes: s.body_limit ?? d.bodyLimitBytes,
    clientRateLimit: {
      enabled: s.rate_limit?.enabled ?? d.clientRateLimit.enabled,
      requests: s.rate_limit?.requests ?? d.clientRateLimit.requests,
      windowMs: s.rate_limit?.window ?? d.clientRateLimit.windowMs,
    },
    logLevel: s.log_level ?? d.logLevel,
    requestLog: {
      enabled: s.request_log?.enabled ?? (s.request_log?.path !== undefined || d.requestLog.enabled),
      ...(s.request_log?.path !== undefined ? { path: s.request_log.path } : {}),
    },
    metricsEnabled: s.metrics_enabled ?? d.metricsEnabled,
    responseHeaders: s.response_headers ?? d.responseHeaders,
    shutdownTimeoutMs: s.shutdown_timeout ?? d.shutdownTimeoutMs,
    apiKeys: s.api_keys ?? [...d.apiKeys],
    ...(s.admin_key !== undefined ? { adminKey: s.admin_key } : {}),
    http2: s.http2 ?? d.http2,
    connectionsPerOrigin: s.connections_per_origin ?? d.connectionsPerOrigin,
    ...(s.redis_url !== undefined ? { redisUrl: s.redis_url } : {}),
    ...(s.ops_port !== undefined ? { opsPort: s.ops_port } : {}),
    opsHost: s.ops_host ?? d.opsHost,
    maxInflightBodyBytes: s.max_inflight_body_bytes ?? d.maxInflightBodyBytes,
    redisCommandTimeoutMs: s.redis_command_timeout ?? d.redisCommandTimeoutMs,
    ...(s.replicas !== undefined ? { replicas: s.replicas } : {}),
  };

  const spend = buildSpend(doc);
  const fallbacks = buildFallbacks(doc.fallbacks as Record<string, unknown> | undefined);
  return deepFreeze({
    ...(fallbacks ? { fallbacks } : {}),
    router,
    breaker,
    healthCheck,
    server,
    ...(spend ? { spend } : {}),
    ...(doc.default_model !== undefined ? { defaultModel: doc.default_model } : {}),
    ...(doc.plugins?.length ? { plugins: doc.plugins } : {}),
    ...hedgeSettings(doc),
    ...(doc.stream_continue === true ? { streamContinue: true } : {}),
    source,
    warnings: [...warnings],
  });
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Runs the pipeline and builds, or throws a {@link ConfigValidationError} listing every error. */
export function compile(raw: unknown, source: ConfigSource, opts: PipelineOptions, label: string): LbConfig {
  const r = runPipeline(raw, opts);
  if (r.errors.length || !r.doc) throw new ConfigValidationError(r.errors, r.warnings, label);
  return buildConfig(r.doc, source, r.warnings);
}

/**
 * When the document lists `plugins`, swaps each strategy name no registered strategy knows (top level and per model
 * group) for a known one before the schema runs, and returns how to put the name back into the parsed document.
 */
function deferPluginStrategies(
  doc: Record<string, unknown>,
): [(parsed: Record<string, unknown>, name: string) => void, string][] {
  const listed = Array.isArray(doc.plugins) ? doc.plugins.length > 0 : typeof doc.plugins === 'string';
  if (!listed) return [];
  const out: [(parsed: Record<string, unknown>, name: string) => void, string][] = [];
  const unknown = (v: unknown): v is string =>
    typeof v === 'string' && v.trim() !== '' && normalizeStrategy(v) === undefined;
  if (unknown(doc.strategy)) {
    out.push([(p, n) => (p.strategy = n), doc.strategy]);
    doc.strategy = 'priority';
  }
  if (isTable(doc.models)) {
    const models: Record<string, unknown> = { ...doc.models };
    for (const [key, g] of Object.entries(models)) {
      if (!isTable(g) || !unknown(g.strategy)) continue;
      out.push([
        (p, n) => ((p.models as Record<string, Record<string, unknown>>)[key].strategy = n),
        g.strategy,
      ]);
      models[key] = { ...g, strategy: 'priority' };
    }
    doc.models = models;
  }
  return out;
}

/** Merges `over` onto `under` (tables deeply; `over` wins). */
export function mergeDocs(
  under: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...under };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isTable(v) && isTable(out[k]) ? mergeDocs(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

export { setAt };

type HedgeFields = {
  hedge_after_ms?: number;
  hedge_after?: string;
  hedge_budget?: number;
  hedge_unsafe?: boolean;
};

function hedgeOptions(d: HedgeFields): HedgeOptionsConfig | undefined {
  const o: HedgeOptionsConfig = {};
  if (d.hedge_after_ms !== undefined) o.afterMs = d.hedge_after_ms;
  if (d.hedge_after !== undefined) o.after = d.hedge_after.trim();
  if (d.hedge_budget !== undefined) o.budget = d.hedge_budget;
  if (d.hedge_unsafe !== undefined) o.unsafe = d.hedge_unsafe;
  return Object.keys(o).length ? o : undefined;
}

/** `hedge`: the file's and environment's hedging, global and per model group; nothing when none is set. */
function hedgeSettings(doc: ConfigDocument): { hedge?: HedgeSettings } {
  const global = hedgeOptions(doc);
  let models: Record<string, HedgeOptionsConfig> | undefined;
  for (const [key, g] of Object.entries(doc.models ?? {})) {
    const o = hedgeOptions(g);
    if (o !== undefined) (models ??= {})[g.name ?? key] = o;
  }
  if (global === undefined && models === undefined) return {};
  return { hedge: { ...global, ...(models ? { models } : {}) } };
}
