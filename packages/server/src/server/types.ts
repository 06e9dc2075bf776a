// lb-server's public shapes: the options of `createServer`, the running server, and the hooks the integration
// layer (`integrations.ts`) fills from the other lb packages.
import type { Server } from 'node:http';
import type { BreakerHandle, BreakerPeers, HealthCheckHandle } from '@lb/breaker';
import type { LbError, Router, RouterConfig } from '@lb/core';
import type { AffinityStore } from '@lb/exchange';
import type { Dialect } from '@lb/providers';
import type { ClientLimiter, RateLimitHandle, RateLimitPeers, Store, StoreHealth } from '@lb/ratelimit';
import type { Observability } from '../observability/types.js';
import type { ObservabilityFactory } from '../observe.js';
import type { BreakerSettings, HealthCheckSettings, ServerConfigInput, ServerSettings } from '../options.js';
import type { TraceHooks } from '../proxy/context.js';
import type { ReloadReport } from '../reload.js';

/**
 * Options of {@link createServer}. A config from `@lb/config-env`'s `loadConfig` fits as is.
 *
 * @example
 * const server = createServer({ router: { endpoints: [{ url: 'https://api.openai.com/v1', apiKey: process.env.OPENAI_API_KEY }] } });
 * await server.listen();
 */
export interface CreateServerOptions extends Omit<ServerConfigInput, 'router'> {
  /** A router config, or a router you built (then the server does not own it: reloads go through it anyway). */
  router: RouterConfig | Router;
  /** Server settings (see {@link ServerSettings}); defaults apply to what is left out. */
  server?: Partial<ServerSettings>;
  /** Circuit breakers per endpoint (`@lb/breaker`). Default: enabled with its defaults. `false` or `{ enabled: false }`: none. */
  breaker?: BreakerSettings;
  /** Active health probes (`@lb/breaker`). Default: disabled. */
  healthCheck?: HealthCheckSettings;
  /** Per-endpoint rate limits from `endpoint.limits` (`@lb/ratelimit`). Default true. */
  rateLimit?: boolean;
  /** Model used when a request names none. Default: none (the request goes to any endpoint). Env `LB_DEFAULT_MODEL`. */
  defaultModel?: string;
  /** Re-reads the config for `POST /admin/reload` and SIGHUP. Default: none (reload answers 501). */
  reloadConfig?: () => Promise<RouterConfig | ServerConfigInput> | RouterConfig | ServerConfigInput;
  /** Where logs go (tests capture them). Default: stdout. */
  logDestination?: NodeJS.WritableStream;
  /** Value of `DEBUG` (`lb:*` logs every routing decision). Default `process.env.DEBUG`. */
  debug?: string;
  /** Version reported by `GET /` and metrics. */
  version?: string;
}

/** A running (or ready to run) lb-server. */
export interface LbServer {
  readonly router: Router;
  readonly settings: ServerSettings;
  readonly http: Server;
  readonly observability: Observability;
  /** `http://host:port` once listening. */
  readonly url: string | undefined;
  /** The operations listener's `http://host:port` once listening (only with `settings.opsPort`). */
  readonly opsUrl: string | undefined;
  /** Client requests being served now (streams included). */
  readonly inFlight: number;
  /** Starts listening (settings' port/host unless given). Resolves with the URL. */
  listen(port?: number, host?: string): Promise<string>;
  /**
   * Reloads the config through `reloadConfig` (or the one given), all or nothing: endpoints, gateway and admin keys,
   * client limits, body limits, timeouts, breaker and health-check settings. Settings that need a restart (listeners,
   * transport, Redis, logging) are kept and named in `restartRequired`. Returns what changed.
   */
  reload(config?: RouterConfig | ServerConfigInput): Promise<ReloadReport>;
  /**
   * Graceful close: stops accepting, lets in-flight requests (streams included) finish for up to `timeoutMs`
   * (default `settings.shutdownTimeoutMs`), then cuts what is left and releases everything. Idempotent.
   */
  close(timeoutMs?: number): Promise<{ drained: boolean; cut: number }>;
}

/** Hooks the integration layer (`integrations.ts`) fills from the other lb packages. */
export interface Integrations {
  observability: ObservabilityFactory;
  attach(
    router: Router,
    opts: {
      breaker?: BreakerSettings;
      healthCheck?: HealthCheckSettings;
      rateLimit: boolean;
      store?: Store;
      breakerPeers?: BreakerPeers;
      /** 429 cooldowns between replicas. */
      limitPeers?: RateLimitPeers;
    },
  ): {
    breaker?: BreakerHandle;
    rateLimit?: RateLimitHandle;
    healthChecks?: HealthCheckHandle;
    dispose(): void;
  };
  clientLimiter(opts: { requests: number; windowMs: number }, store?: Store): ClientLimiter;
  /** A rate-limit store shared by replicas, in the Redis at `url` (`server.redisUrl`). */
  sharedStore?(
    url: string,
    onError: (err: Error) => void,
    options: { commandTimeoutMs: number; replicas: number | undefined },
  ): {
    store: Store;
    /** Whether the store answers, and how many replicas share it (typed state changes). */
    health: StoreHealth;
    /** Breaker changes between replicas (pub/sub on the same Redis). */
    breakerPeers?: BreakerPeers;
    /** 429 cooldowns between replicas (pub/sub on the same Redis). */
    limitPeers?: RateLimitPeers;
    /** Where objects live (files, batches, stored responses…), shared by replicas. */
    affinity?: AffinityStore;
    status(): string;
    /** The Redis connection itself (ioredis): budgets and the admin API's keys live there too. */
    client?: unknown;
    ready(timeoutMs: number): Promise<boolean>;
    close(): Promise<void>;
  };
  estimateTokens(json: Record<string, any>): number;
  dialect(name: string): Dialect | undefined;
  /** OpenTelemetry traces (`@lb/otel`): undefined when `@opentelemetry/api` is not installed. */
  tracing?(router: Router): (TraceHooks & { dispose(): void }) | undefined;
  explain?(
    router: Router,
    operation: string,
    model: string | undefined,
    features: readonly string[] | undefined,
  ): LbError | undefined;
  requestFeatures?(operation: string, json: Record<string, any>): readonly string[] | undefined;
}
