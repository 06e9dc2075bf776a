import type { CircuitState } from '@lb/core';
import type { StoreHealth, StoreState } from '@lb/ratelimit';
import type { Logger } from 'pino';
import type { BreakerSource, HealthCheckSource, RateLimitSource } from './sources.js';

/**
 * Options of {@link createObservability}. Explicit values win; the server maps its environment onto them.
 *
 * @example
 * ```ts
 * const obs = createObservability(router, {
 *   metricsEnabled: true,
 *   logLevel: 'info',
 *   requestLog: { enabled: true, path: './logs/requests.jsonl' },
 *   debug: process.env.DEBUG,
 * });
 * ```
 */
export interface ObservabilityOptions {
  /** Collect Prometheus metrics and serve them from `metricsText()`. Default `true`. Env `METRICS_ENABLED`. */
  metricsEnabled?: boolean;
  /**
   * pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`. Default `'info'`. Env `LOG_LEVEL`.
   * `debug` (below) lowers it to `debug` when it enables routing logs.
   */
  logLevel?: string;
  /**
   * The request log: one JSON line per client request (time, requestId, client, method, path, model, endpoint,
   * attempts, status, latency, ttfb, tokens; never a key or a body). Default disabled. Env `REQUEST_LOG_ENABLED`.
   * `path`: file to append to (directories created), `'-'` for stdout. Default `./logs/requests.jsonl`.
   * Env `REQUEST_LOG_PATH`.
   */
  requestLog?: { enabled: boolean; path?: string };
  /**
   * Value of `DEBUG`: `lb:*`, `lb:routing` (or `*`) turns on debug logs of routing decisions (endpoint chosen,
   * attempt start, success, failure, state changes). Default unset. Env `DEBUG`.
   */
  debug?: string;
  /** Where logs go. Default stdout through an asynchronous pino destination. Tests capture logs here. */
  logDestination?: NodeJS.WritableStream;
  /** The `@lb/breaker` handle, when attached: its typed `snapshot()` feeds `lb_breaker_state` and `/health`. */
  breaker?: BreakerSource;
  /** The `@lb/ratelimit` handle, when attached: its typed `snapshot()` feeds the `lb_ratelimit_remaining` gauges. */
  rateLimit?: RateLimitSource;
  /** The health-check handle (`@lb/breaker`), when attached: its last probes feed `/health` and `lb_health_probe_seconds`. */
  healthChecks?: HealthCheckSource;
  /** Bytes that streams held for stream probation keep in memory now: feeds `lb_stream_probation_held_bytes`. */
  heldBytes?: () => number;
  /** The shared rate-limit store, when one is configured: its state is shown in `/health` (never its URL). */
  sharedStore?: () => SharedStoreView;
  /**
   * The shared store's health (`@lb/ratelimit`'s `RedisStore.health`): each state change is logged once (degraded
   * at warn, back up at info), its status feeds `lb_store_up`, `lb_store_errors_total`, `lb_store_latency_seconds`,
   * `lb_store_degraded_share` and `lb_store_replicas`, and a degraded store makes `/health` say `degraded`.
   */
  store?: StoreHealth;
  /** Version shown in `/health` and `lb_build_info`. Default `undefined`. */
  version?: string;
  /** Collect prom-client's default process metrics (CPU, memory, event loop lag). Default `true`. */
  processMetrics?: boolean;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
}

/** Token usage as OpenAI reports it. */
export interface RecordUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

/** What the server knows about one finished client request. Passed once per request to `recordRequest`. */
export interface ClientRequestRecord {
  requestId: string;
  /** Masked client key id or IP. Never a full key. */
  client: string | undefined;
  method: string;
  path: string;
  model: string | undefined;
  stream: boolean;
  /** HTTP status sent to the client. */
  status: number;
  /** Whole request, ms. */
  latencyMs: number;
  /** Time to the first byte sent to the client, ms. */
  ttfbMs?: number;
  /** Endpoint that served (or last failed) it. */
  endpointId?: string;
  /** Upstream attempts made. */
  attempts: number;
  /** OpenAI error `type` when the request failed. */
  errorType?: string;
  usage?: RecordUsage;
  /** What the request cost, USD (`@lb/spend`); undefined when unknown (an unpriced model) or not known yet. */
  costUsd?: number;
  /** The named client key (`[[keys]]` name) that sent it. */
  key?: string;
  /** The answering upstream's own id for the request (`x-request-id`, Anthropic's `request-id`): what its support asks for. */
  upstreamRequestId?: string;
  /** The client's `x-request-id`, when it sent one (at most 256 characters kept). */
  clientRequestId?: string;
}

/** Overall status: `healthy` (every endpoint available), `degraded` (some not), `unhealthy` (none can serve). */
export type OverallStatus = 'healthy' | 'degraded' | 'unhealthy';

/** One endpoint on the health page. Keys masked. */
export interface EndpointHealthView {
  id: string;
  name: string;
  provider: string;
  url: string;
  /** Masked key (`sk-…abcd`). */
  apiKey: string;
  models: readonly string[];
  priority: number;
  weight: number;
  /** Router state: `healthy`, `cooling`, `unhealthy`, `disabled`. */
  state: 'healthy' | 'cooling' | 'unhealthy' | 'disabled';
  /** Can take a request now (healthy and every guard admits). */
  available: boolean;
  /** Why it is unavailable or not healthy. */
  reason: string | undefined;
  /** Circuit breaker state, when a breaker is attached. */
  breaker: CircuitState | undefined;
  /** Successes / (successes + failures), 0..1; 1 when unused. */
  successRate: number;
  /** Attempts sent to this endpoint (a request that failed over counts at each endpoint it tried). */
  attempts: number;
  /** @deprecated The same number as `attempts` (`/stats` counts client requests under `requests`). */
  requests: number;
  successes: number;
  errors: number;
  consecutiveErrors: number;
  errorsByKind: Record<string, number>;
  inFlight: number;
  /** Its last stream broke after the first byte: its streams are held back whole until one ends cleanly. */
  streamProbation: boolean;
  /** Attempt latency EWMA, ms (undefined: never measured). */
  latencyMs: number | undefined;
  lastLatencyMs: number | undefined;
  /** ISO time of the last attempt. */
  lastUsed: string | undefined;
  /** ISO time of the last failure and its masked message. */
  lastErrorAt: string | undefined;
  lastError: string | undefined;
  /** ISO time a cooling/unhealthy endpoint returns by itself. */
  recoversAt: string | undefined;
  /** Ms until then. */
  recoversInMs: number | undefined;
  /** Last health probe, when health checks run. */
  probe:
    | {
        ok: boolean | undefined;
        status: number | undefined;
        responseTimeMs: number | undefined;
        at: string;
      }
    | undefined;
}

/** Body of `/health`. */
export interface HealthBody {
  status: OverallStatus;
  /** ISO time. */
  time: string;
  version: string | undefined;
  uptimeSeconds: number;
  strategy: string;
  summary: {
    total: number;
    healthy: number;
    available: number;
    rateLimited: number;
    coolingDown: number;
    unhealthy: number;
    disabled: number;
    breakersOpen: number;
    /** Over every attempt so far, 0..1; 1 when none. */
    successRate: number;
    /** Attempts over every endpoint (`/stats` → `totals.requests` counts client requests). */
    attempts: number;
    /** @deprecated The same number as `attempts`. */
    requests: number;
  };
  endpoints: EndpointHealthView[];
  /** The rate-limit store replicas share, when one is configured (Redis). */
  sharedStore?: SharedStoreView;
}

/** A shared rate-limit store as `/health` shows it. */
export interface SharedStoreView {
  kind: 'redis';
  /**
   * `up`: commands answer within the command timeout, budgets are shared. `degraded`: Redis errs, is away or stalls;
   * each replica keeps to its share of every budget (limit ÷ replicas) until it answers again.
   */
  status: StoreState;
  /** The client's connection state (`ready`, `connecting`, `reconnecting`…). */
  connection: string;
  /** ISO time of the last change of `status`. */
  since: string;
  /** Why it is in this state (the error or timeout that degraded it). Never the URL. */
  reason: string;
  /** Replicas sharing the budgets (heartbeats in Redis, the last count while it is away; or `LB_REPLICAS`). */
  replicas: number;
  /** 1 ÷ replicas: the part of each budget this replica uses while degraded. */
  share: number;
  /** Store commands that failed or timed out so far (a store outage never fails a request). */
  errors: number;
  /** `LB_REDIS_COMMAND_TIMEOUT`, ms. */
  commandTimeoutMs: number;
}

/** Body of `/stats`. */
export interface StatsBody {
  time: string;
  uptimeSeconds: number;
  totals: {
    requests: number;
    errors: number;
    streams: number;
    attempts: number;
    failovers: number;
    /** Model fallbacks taken (`fallback` events), by cause. */
    fallbacks: { total: number; byCause: Record<'context_window' | 'content_policy' | 'default', number> };
    successRate: number;
    tokens: { prompt: number; completion: number; total: number };
    byStatus: Record<string, number>;
    errorsByKind: Record<string, number>;
    /** Client request latency, ms. */
    latencyMs: { avg: number; p50: number | undefined; p95: number | undefined; p99: number | undefined };
  };
  endpoints: Record<
    string,
    {
      state: string;
      available: boolean;
      breaker: CircuitState | undefined;
      attempts: number;
      successes: number;
      failures: number;
      successRate: number;
      errorsByKind: Record<string, number>;
      inFlight: number;
      latencyMs: number | undefined;
      tokens: { prompt: number; completion: number; total: number };
      rateLimit: Record<string, number> | undefined;
    }
  >;
  models: Record<
    string,
    {
      requests: number;
      errors: number;
      streams: number;
      tokens: { prompt: number; completion: number; total: number };
      latencyMs: { avg: number };
    }
  >;
}

/**
 * The server's observability: logger, Prometheus metrics, health page, stats and request log, all fed by the
 * router's event bus and `router.snapshot()`.
 */
export interface Observability {
  /** The server's logger (asynchronous destination; redacts authorization headers and keys). */
  readonly logger: Logger;
  /** `Content-Type` of `metricsText()`. */
  readonly metricsContentType: string;
  /** Prometheus exposition text from the module's own registry. Empty text when metrics are disabled. */
  metricsText(): Promise<string>;
  /** `/health`: 503 when nothing can serve. */
  health(): { httpStatus: 200 | 503; body: HealthBody };
  /** `/stats`: the metrics as JSON. */
  stats(): StatsBody;
  /** Records one finished client request: HTTP metrics and the request-log line. Call once per request. */
  recordRequest(rec: ClientRequestRecord): void;
  /** Flushes logs and the request log, unsubscribes from the router. Idempotent. */
  close(): Promise<void>;
}
