import type { RouterConfig } from '@lb/core';
import type { FallbacksConfig } from './fallbacks.js';
import type { ConfigIssue } from './issues.js';
import type { SpendConfig } from './spend.js';

/** Environment variables: `process.env` or a literal object. Empty strings count as unset. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Which env schemes produced the endpoints. */
export type EnvScheme = 'numbered' | 'fallback-keys' | 'upstream';

/** Circuit breaker settings, read by `@lb/breaker` / `@lb/server`. */
export interface BreakerConfig {
  /** Default true. Env `OPENAI_CIRCUIT_BREAKER`; file `breaker.enabled`. */
  enabled: boolean;
  /** Failures that open the circuit. Default 5. Env `CIRCUIT_BREAKER_THRESHOLD`; file `breaker.threshold`. */
  threshold: number;
  /** How long an open circuit waits before a trial request, ms. Default 60000. Env `CIRCUIT_BREAKER_TIMEOUT` (seconds); file `breaker.half_open_after`. */
  halfOpenAfterMs: number;
  /** `consecutive` failures, or a failure-rate `sampling` window. Default `consecutive`. Env `CIRCUIT_BREAKER_POLICY`. */
  policy: 'consecutive' | 'sampling';
}

/** Active health checks (probing each endpoint's `healthCheck` path). */
export interface HealthCheckConfig {
  /** Default false, true once an interval is set. Env `OPENAI_HEALTH_CHECK_INTERVAL` (0 disables); file `health_check.enabled`. */
  enabled: boolean;
  /** Between probes of one endpoint, ms. Default 30000. Env `OPENAI_HEALTH_CHECK_INTERVAL`; file `health_check.interval`. */
  intervalMs: number;
  /** One probe's timeout, ms. Default 5000. Env `HEALTH_CHECK_TIMEOUT`; file `health_check.timeout`. */
  timeoutMs: number;
}

/** The gateway server's own settings (what `@lb/server` reads). */
export interface ServerConfig {
  /** Interface to bind. Default `127.0.0.1` (local only; use `0.0.0.0` in containers). Env `HOST`. */
  host: string;
  /** Default 8080; 0 picks a free port. Env `PORT`. */
  port: number;
  /** Upstream timeout for non-streaming requests, ms. Default 60000. Env `TIMEOUT`. */
  timeoutMs: number;
  /** Upstream connect timeout, ms. Default 10000. Env `CONNECT_TIMEOUT`. */
  connectTimeoutMs: number;
  /** Streams: longest wait for the first byte, ms. Default 30000. Env `STREAM_FIRST_BYTE_TIMEOUT`. */
  streamFirstByteTimeoutMs: number;
  /** Streams: longest silence between chunks, ms. Default 60000. Env `STREAM_IDLE_TIMEOUT`. */
  streamIdleTimeoutMs: number;
  /**
   * Streams from an endpoint on stream probation (its last stream broke after the first byte) are held back whole
   * for up to this long (ms), so that a repeat break fails over instead of reaching the client; then, or past
   * 512 KiB, the stream goes live. 0 turns holding off. Default 10000. Env `STREAM_PROBATION_HOLD`.
   */
  streamProbationHoldMs: number;
  /**
   * What all the streams held for probation may keep in memory together, bytes: a stream that would take them past
   * it goes live instead. Default 67108864 (64 MiB). Env `STREAM_PROBATION_MAX_BYTES`.
   */
  streamProbationMaxBytes: number;
  /**
   * Largest server-sent event an upstream stream may send, bytes: an event that grows past it without its blank line
   * (an endless line) ends the stream with an SSE error (`upstream_event_too_large`) and aborts the upstream.
   * Default 8388608 (8 MiB). Env `LB_MAX_SSE_EVENT_BYTES`.
   */
  maxEventBytes: number;
  /**
   * The longest one stream may run, ms, from its response head: past it the upstream is aborted and the client's stream
   * ends with an SSE error (`upstream_stream_too_long`), so a stream that trickles forever cannot hold a connection.
   * 0 turns the bound off. Default 1800000 (30 min). Env `LB_MAX_STREAM_DURATION` (ms, or `30m`).
   */
  maxStreamDurationMs: number;
  /** Largest request body, bytes. Default 26214400 (25 MiB). Env `BODY_LIMIT`. */
  bodyLimitBytes: number;
  /** Per-client limit. Default off, 60 requests per 60000 ms. Env `RATE_LIMIT_ENABLED`, `RATE_LIMIT_REQUESTS`, `RATE_LIMIT_WINDOW` (ms). */
  clientRateLimit: { enabled: boolean; requests: number; windowMs: number };
  /** Default `info`. Env `LOG_LEVEL`. */
  logLevel: string;
  /** JSON Lines request log. Default off. Env `REQUEST_LOG_ENABLED`, `REQUEST_LOG_PATH` (setting a path enables it). */
  requestLog: { enabled: boolean; path?: string };
  /** Serve `/metrics`. Default true. Env `METRICS_ENABLED`. */
  metricsEnabled: boolean;
  /**
   * Tell the client which endpoint answered: `x-lb-endpoint` (its id) and `x-lb-attempts` on every proxied response.
   * Default true. Env `LB_RESPONSE_HEADERS`.
   */
  responseHeaders: boolean;
  /** Graceful shutdown wait, ms. Default 30000. Env `SHUTDOWN_TIMEOUT`. */
  shutdownTimeoutMs: number;
  /** Client keys accepted by the gateway. Default none (open). Env `LB_API_KEYS` (comma list). */
  apiKeys: string[];
  /** Key for admin routes. Env `LB_ADMIN_KEY`. */
  adminKey?: string;
  /** Offer HTTP/2 to https upstreams (ALPN). Default true. Env `HTTP2`. */
  http2: boolean;
  /** Keep-alive connections per upstream origin; `null` = unbounded. Default null. File `connections_per_origin`. */
  connectionsPerOrigin: number | null;
  /**
   * Redis shared by replicas for rate-limit state (endpoint budgets, 429 cooldowns, per-client windows), when set.
   * A secret (it may carry a password). Env `LB_REDIS_URL`.
   */
  redisUrl?: string;
  /**
   * Port of the operations listener: admin routes (`/admin/*`), `/metrics`, `/stats` and the detailed `/health`,
   * without a key, on their own port. Default none (those routes are then served on the main port only behind a key:
   * `adminKey` for admin, a gateway key for the others while `apiKeys` is set). 0 picks a free port. Env `LB_OPS_PORT`.
   */
  opsPort?: number;
  /** Interface of the operations listener. Default `127.0.0.1` (this machine only). Env `LB_OPS_HOST`. */
  opsHost: string;
  /**
   * What the request bodies being read at one time may hold together, bytes: a request whose body would take them
   * past it is answered 503 with Retry-After. Default 134217728 (128 MiB). Env `LB_MAX_INFLIGHT_BODY_BYTES`.
   */
  maxInflightBodyBytes: number;
  /**
   * With `redisUrl`: a Redis command not answered within this many ms fails, and the replica decides on its share
   * of every budget (limit ÷ replicas) until Redis answers again. Size it a few ms over the round trip
   * `lb_store_latency_seconds` shows. Default 100. Env `LB_REDIS_COMMAND_TIMEOUT` (ms, or `100ms`, `0.1s`).
   */
  redisCommandTimeoutMs: number;
  /**
   * With `redisUrl`: how many replicas share the budgets, when fixed. Default: counted from the replicas'
   * heartbeats in Redis (the last count while Redis is away). Env `LB_REPLICAS`.
   */
  replicas?: number;
}

/** Where a config came from. */
export interface ConfigSource {
  /** `env` (variables), `file` (a config file, env filling gaps) or `preset` (built in code). */
  kind: 'env' | 'file' | 'preset';
  /** The file, for `file`. */
  path?: string;
  /** Env schemes that produced endpoints (`numbered`, `fallback-keys`, `upstream`), or the file's format. */
  schemes: string[];
}

/**
 * A complete, validated, frozen config: the router's config plus the server's, breaker and health check settings.
 * Keys live only in `router.endpoints[].apiKey`, `server.apiKeys` and `server.adminKey`.
 */
/** One model's (or the global) hedging. */
export interface HedgeOptionsConfig {
  /** Fixed delay before a hedge, ms. */
  afterMs?: number;
  /** Delay as the route's observed latency percentile (`"p95"`). */
  after?: string;
  /** Share of extra upstream requests allowed over a sliding minute. Default 0.1. */
  budget?: number;
  /** Hedge also requests that are not safe to send twice. */
  unsafe?: boolean;
}

/** Hedging, global and per model or group. */
export interface HedgeSettings extends HedgeOptionsConfig {
  models?: Record<string, HedgeOptionsConfig>;
}

export interface LbConfig {
  /** For `createRouter(config.router)` / `router.reload(config.router)`. */
  router: RouterConfig;
  breaker: BreakerConfig;
  healthCheck: HealthCheckConfig;
  server: ServerConfig;
  /** Virtual keys and prices, when the file has `[[keys]]` or `[prices]` (for `@lb/spend`). */
  spend?: SpendConfig;
  /** Model fallback chains, when `[fallbacks]` or `LB_*FALLBACKS` set any (for `@lb/exchange`'s `FallbackRun`). */
  fallbacks?: FallbacksConfig;
  /** Model used when a request names none. Env `OPENAI_MODEL`; file `default_model`. */
  defaultModel?: string;
  /**
   * Plugin modules for lb-server to load before it builds the router, as written: package names (resolved from the
   * working directory) or paths relative to it. Env `LB_PLUGINS` (comma-separated); file `plugins`. A strategy
   * name no built-in knows passes validation when plugins are listed: lb-server checks it once they are loaded.
   */
  plugins?: readonly string[];
  /**
   * Hedged requests, when the file or the environment turns them on anywhere (`@lb/exchange`'s `HedgeConfig`). File:
   * `hedge_after_ms`, `hedge_after`, `hedge_budget`, `hedge_unsafe`, top-level and per `[models.<name>]`. Env:
   * `LB_HEDGE_AFTER_MS`, `LB_HEDGE_BUDGET`.
   */
  hedge?: HedgeSettings;
  /** Continue a chat stream that broke after content on another endpoint. Env `LB_STREAM_CONTINUE`; file `stream_continue`. */
  streamContinue?: boolean;
  source: ConfigSource;
  /** Problems that did not stop loading (log them). */
  warnings: readonly ConfigIssue[];
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Variables to read. Default `process.env`. */
  env?: Env;
  /** Config file (TOML, JSON or YAML by extension). Default: env `LB_CONFIG`, else none (env schemes only). */
  file?: string;
  /** Directory of `.env` files and relative paths. Default `process.cwd()`. */
  cwd?: string;
  /** Read `.env` and `.env.local` from `cwd` (real env wins over `.env.local` over `.env`). Default true when `env` is not given. */
  dotenv?: boolean;
}
