// Builds the frozen `LbConfig` (router, server, breaker, health checks, spend, fallbacks, hedging) from a document the
// pipeline of `validate.ts` has checked: defaults filled in, names mapped to the API's, nothing validated again.
import type { EndpointConfig, ModelGroupConfig, RouterConfig } from '@lb/core';
import { SERVER_DEFAULTS } from './defaults.js';
import { buildFallbacks } from './fallbacks.js';
import type { ConfigIssue } from './issues.js';
import { type ConfigDocument, normalizeStrategy } from './schema.js';
import { buildSpend, toPriceConfig } from './spend.js';
import type {
  BreakerConfig,
  ConfigSource,
  HealthCheckConfig,
  HedgeOptionsConfig,
  HedgeSettings,
  LbConfig,
  ServerConfig,
} from './types.js';

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
