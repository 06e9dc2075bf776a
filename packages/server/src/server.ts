import { timingSafeEqual } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, createRouter, type LbError, maskKey, Router, type RouterConfig } from '@lb/core';
import type { Agent } from 'undici';
import { createDashboard } from './dashboard/index.js';
import { clientKeyOf, sendJson, sendStatus } from './http.js';
import type { HealthBody, StatsBody } from './observability/types.js';
import type { ObservabilityFactory, ObservabilityLike } from './observe.js';
import {
  type BreakerSettings,
  type HealthCheckSettings,
  isLoopback,
  resolveSettings,
  type ServerConfigInput,
  type ServerSettings,
} from './options.js';
import { type DialectLike, Exchange, type ProxyContext, type TraceHooks } from './proxy.js';
import { createTransport, HoldBudget } from './upstream.js';

/** A handle with a snapshot, as `@lb/breaker` / `@lb/ratelimit` attachments return. */
export interface Attachment {
  snapshot(): unknown;
  dispose(): void;
}

/** A `@lb/ratelimit` `Store` (opaque here: the integration layer makes and uses it). */
export type SharedStore = object;

/** A per-client limiter, as `@lb/ratelimit`'s `createClientLimiter` returns. */
export interface ClientLimiterLike {
  take(key: string): {
    allowed: boolean;
    remaining: number;
    limit: number;
    retryAfterMs: number;
    resetAt: number;
  };
  readonly storeErrors?: number;
}

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
  readonly observability: ObservabilityLike;
  /** `http://host:port` once listening. */
  readonly url: string | undefined;
  /** Client requests being served now (streams included). */
  readonly inFlight: number;
  /** Starts listening (settings' port/host unless given). Resolves with the URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Reloads the config through `reloadConfig` (or the one given). Returns what changed. */
  reload(
    config?: RouterConfig | ServerConfigInput,
  ): Promise<{ added: string[]; removed: string[]; changed: string[] }>;
  /**
   * Graceful close: stops accepting, lets in-flight requests (streams included) finish for up to `timeoutMs`
   * (default `settings.shutdownTimeoutMs`), then cuts what is left and releases everything. Idempotent.
   */
  close(timeoutMs?: number): Promise<{ drained: boolean; cut: number }>;
}

/** A publish/subscribe channel between replicas (`@lb/breaker`'s `BreakerPeers`). */
export interface BreakerPeersLike {
  publish(message: string): void;
  subscribe(onMessage: (message: string) => void, onSubscribed?: () => void): () => void;
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
      store?: SharedStore;
      breakerPeers?: BreakerPeersLike;
    },
  ): { breaker?: Attachment; rateLimit?: Attachment; healthChecks?: Attachment; dispose(): void };
  clientLimiter(opts: { requests: number; windowMs: number }, store?: SharedStore): ClientLimiterLike;
  /** A rate-limit store shared by replicas, in the Redis at `url` (`server.redisUrl`). */
  sharedStore?(
    url: string,
    onError: (err: Error) => void,
  ): {
    store: SharedStore;
    /** Breaker changes between replicas (pub/sub on the same Redis). */
    breakerPeers?: BreakerPeersLike;
    status(): string;
    ready(timeoutMs: number): Promise<boolean>;
    close(): Promise<void>;
  };
  estimateTokens(json: Record<string, any>): number;
  dialect(name: string): DialectLike | undefined;
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

const PROXY_PREFIXES = [
  '/chat/',
  '/completions',
  '/embeddings',
  '/images/',
  '/audio/',
  '/moderations',
  '/responses',
  '/files',
  '/batches',
  '/uploads',
  '/fine_tuning/',
  '/vector_stores',
  '/assistants',
  '/threads',
];

function routerConfigOf(c: RouterConfig | ServerConfigInput): RouterConfig {
  return 'router' in c && c.router && typeof c.router === 'object'
    ? (c as ServerConfigInput).router
    : (c as RouterConfig);
}

/** Builds the server from options and the integration hooks. */
export function buildServer(options: CreateServerOptions, integ: Integrations): LbServer {
  if (!options || typeof options !== 'object' || !options.router)
    throw new ConfigError(`createServer: expected { router, server? }, received ${typeof options}`);
  const settings = resolveSettings(options.server);
  const router = options.router instanceof Router ? options.router : createRouter(options.router);
  // Redis errors repeat while it is away (every reconnect attempt): one warning per 30 s says so.
  let lastRedisWarn = 0;
  const shared =
    settings.redisUrl !== undefined && integ.sharedStore
      ? integ.sharedStore(settings.redisUrl, (err) => {
          const now = Date.now();
          if (now - lastRedisWarn < 30_000) return;
          lastRedisWarn = now;
          logger.warn(
            { err: err.message },
            'shared rate-limit store (Redis) unavailable: deciding on local state until it is back',
          );
        })
      : undefined;
  const attached = integ.attach(router, {
    breaker: options.breaker,
    healthCheck: options.healthCheck,
    rateLimit: options.rateLimit !== false,
    store: shared?.store,
    breakerPeers: shared?.breakerPeers,
  });
  const holdBudget = new HoldBudget(settings.streamProbationMaxBytes);
  const obs = integ.observability(router, {
    metricsEnabled: settings.metricsEnabled,
    logLevel: settings.logLevel,
    requestLog: settings.requestLog,
    debug: options.debug ?? process.env.DEBUG,
    logDestination: options.logDestination,
    breaker: attached.breaker,
    rateLimit: attached.rateLimit,
    healthChecks: attached.healthChecks,
    heldBytes: () => holdBudget.used,
    sharedStore: shared
      ? () => ({ kind: 'redis', status: shared.status(), errors: storeErrors() })
      : undefined,
    version: options.version,
  });
  const logger = obs.logger;
  const storeErrors = () =>
    ((attached.rateLimit as { storeErrors?: number } | undefined)?.storeErrors ?? 0) +
    (limiter?.storeErrors ?? 0);
  const transport: Agent = createTransport(settings);
  const apiKeys = settings.apiKeys.length ? new Set(settings.apiKeys) : undefined;
  const limiter = settings.clientRateLimit.enabled
    ? integ.clientLimiter(settings.clientRateLimit, shared?.store)
    : undefined;
  const explain = integ.explain;
  const tracing = integ.tracing?.(router);
  const px: ProxyContext = {
    router,
    transport,
    settings,
    holdBudget,
    defaultModel: options.defaultModel,
    dialect: integ.dialect,
    explain: explain ? (op, model, features) => explain(router, op, model, features) : undefined,
    estimate: undefined,
    features: undefined,
    trace: tracing,
    record: (rec) => obs.recordRequest(rec),
    onError: (err, requestId) => logger.error({ err, requestId }, 'unexpected error while proxying'),
  };

  // Token estimates cost a walk over the body: only while some endpoint has a tokens-per-minute limit. Features
  // (`n` > 1…) cost a parse of the body: only while some endpoint's provider lacks one.
  const syncBodyNeeds = () => {
    px.estimate = router.endpoints.some((e) => e.limits.tpm) ? integ.estimateTokens : undefined;
    px.features = router.endpoints.some((e) => (integ.dialect(e.provider)?.lacks?.length ?? 0) > 0)
      ? integ.requestFeatures
      : undefined;
  };
  syncBodyNeeds();
  // The dashboard taps finished requests only while one is open (the hub installs and removes its tap).
  const recordOnly = px.record;
  const dashboard = createDashboard(
    {
      router,
      health: () => obs.health().body as HealthBody,
      stats: () => obs.stats() as StatsBody,
      sharedStore: shared
        ? () => ({ kind: 'redis', status: shared.status(), errors: storeErrors() })
        : undefined,
      tap: (fn) => {
        px.record = fn
          ? (rec) => {
              recordOnly(rec);
              fn(rec);
            }
          : recordOnly;
      },
    },
    (req) => adminDenied(req),
  );
  const offReload = router.on('config:reloaded', syncBodyNeeds);
  // A probation that ends lets the endpoint's other held streams go live (after the listener's caller is done).
  const offProbation = router.on('endpoint:probation', (e) => {
    if (!e.on) queueMicrotask(() => holdBudget.release(e.endpointId));
  });

  let inFlight = 0;
  let closing = false;
  let drained: (() => void) | undefined;
  const onDone = () => {
    inFlight--;
    if (closing && inFlight === 0) drained?.();
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    inFlight++;
    if (closing) res.setHeader('connection', 'close');
    const url = req.url ?? '/';
    let path: string | undefined;
    if (url.startsWith('/v1/')) path = url.slice(3);
    else {
      for (const p of PROXY_PREFIXES) {
        if (url.startsWith(p)) {
          path = url;
          break;
        }
      }
    }
    if (
      path !== undefined &&
      !path.startsWith('/health') &&
      !(isModelsList(path, req.method) && router.models().length > 0)
    ) {
      let client: string | undefined;
      if (apiKeys !== undefined) {
        const key = clientKeyOf(req);
        if (key === undefined || !apiKeys.has(key)) {
          res.on('close', onDone);
          req.resume();
          sendStatus(
            res,
            401,
            key === undefined
              ? 'Missing API key: send your lb gateway key as "Authorization: Bearer <key>"'
              : `Incorrect API key provided: ${maskKey(key)}`,
          );
          return;
        }
        client = maskKey(key);
      } else client = req.socket.remoteAddress;
      if (limiter !== undefined) {
        const r = limiter.take(client ?? 'anonymous');
        res.setHeader('x-ratelimit-limit-requests', r.limit);
        res.setHeader('x-ratelimit-remaining-requests', r.remaining);
        if (!r.allowed) {
          res.on('close', onDone);
          req.resume();
          obs.recordRequest({
            requestId: '',
            client,
            method: req.method ?? 'GET',
            path,
            model: undefined,
            stream: false,
            status: 429,
            latencyMs: 0,
            attempts: 0,
            errorType: 'client_rate_limited',
          });
          sendStatus(
            res,
            429,
            `Rate limit reached for this client: ${r.limit} requests per ${settings.clientRateLimit.windowMs} ms`,
            r.retryAfterMs,
          );
          return;
        }
      }
      // The exchange's own 'close' listener counts the request done (one listener per response).
      new Exchange(px, req, res, path, client, onDone).run();
      return;
    }
    res.on('close', onDone);
    internal(req, res, path ?? url).catch((err) => {
      logger.error({ err }, 'internal route failed');
      if (!res.headersSent) sendStatus(res, 500, 'Internal gateway error');
    });
  };

  const internal = async (req: IncomingMessage, res: ServerResponse, url: string): Promise<void> => {
    const q = url.indexOf('?');
    const p = q >= 0 ? url.slice(0, q) : url;
    const method = req.method ?? 'GET';
    req.resume();
    if (method === 'GET' || method === 'HEAD') {
      if (p === '/' || p === '/livez' || p === '/healthz/live') {
        sendJson(res, 200, { status: 'ok', name: 'lb-server', version: options.version });
        return;
      }
      if (p === '/health' || p === '/healthz') {
        const h = obs.health();
        sendJson(res, h.httpStatus, h.body);
        return;
      }
      if (p === '/metrics') {
        if (!settings.metricsEnabled) {
          sendStatus(res, 404, 'Metrics are disabled (METRICS_ENABLED=false)');
          return;
        }
        const text = await obs.metricsText();
        res.writeHead(200, {
          'content-type': obs.metricsContentType,
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
        return;
      }
      if (p === '/stats') return sendJson(res, 200, obs.stats());
      if (p === '/models') {
        if (!checkClient(req, res)) return;
        sendJson(res, 200, modelList(router));
        return;
      }
    }
    if (p.startsWith('/admin/')) return admin(req, res, p, method);
    if (p.startsWith('/dashboard') && dashboard.handle(req, res, p, method)) return;
    sendStatus(res, 404, `Unknown route ${method} ${p}`);
  };

  const checkClient = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (apiKeys === undefined) return true;
    const key = clientKeyOf(req);
    if (key !== undefined && apiKeys.has(key)) return true;
    sendStatus(
      res,
      401,
      key === undefined ? 'Missing API key' : `Incorrect API key provided: ${maskKey(key)}`,
    );
    return false;
  };

  /** The one admin access check: admin routes and the dashboard use it. Undefined: allowed. */
  const adminDenied = (req: IncomingMessage): { status: number; message: string } | undefined => {
    const adminKey = settings.adminKey;
    if (adminKey !== undefined) {
      const key = (req.headers['x-admin-key'] as string | undefined) ?? clientKeyOf(req);
      if (key === undefined || !sameSecret(key, adminKey))
        return { status: 401, message: 'Admin routes need the admin key (LB_ADMIN_KEY)' };
    } else if (
      !isLoopback(req.socket.remoteAddress ?? '') &&
      req.socket.remoteAddress !== '::ffff:127.0.0.1'
    ) {
      return {
        status: 403,
        message: 'Admin routes are open to loopback clients only unless LB_ADMIN_KEY is set',
      };
    }
    return undefined;
  };

  const admin = async (
    req: IncomingMessage,
    res: ServerResponse,
    p: string,
    method: string,
  ): Promise<void> => {
    const denied = adminDenied(req);
    if (denied) return sendStatus(res, denied.status, denied.message);
    if (method === 'GET' && p === '/admin/endpoints') return sendJson(res, 200, router.snapshot());
    if (method !== 'POST') return sendStatus(res, 405, `Use POST for ${p}`);
    const m = /^\/admin\/endpoints\/([^/]+)\/(disable|enable)$/.exec(p);
    if (m) {
      const id = decodeURIComponent(m[1]);
      const enable = m[2] === 'enable';
      if (!router.setEndpointHealth(id, enable, enable ? 'enabled by admin' : 'disabled by admin')) {
        sendStatus(res, 404, `Unknown endpoint ${JSON.stringify(id)}`);
        return;
      }
      logger.info({ endpointId: id }, `endpoint ${enable ? 'enabled' : 'disabled'} by admin`);
      sendJson(res, 200, { id, enabled: enable, status: router.getHealth(id)?.status });
      return;
    }
    if (p === '/admin/reload') {
      if (!options.reloadConfig) {
        sendStatus(res, 501, 'This server was started without a reloadable config');
        return;
      }
      try {
        const changes = await server.reload();
        sendJson(res, 200, { reloaded: true, ...changes });
        return;
      } catch (e) {
        sendStatus(res, 400, `Reload failed, config unchanged: ${(e as Error).message}`);
        return;
      }
    }
    sendStatus(res, 404, `Unknown admin route ${method} ${p}`);
  };

  const http = createHttpServer({ noDelay: true, keepAlive: true, keepAliveTimeout: 65_000 }, handle);
  http.keepAliveTimeout = 65_000;
  http.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && !socket.destroyed) {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      socket.end(
        `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
    } else socket.destroy();
  });

  let url: string | undefined;
  let closed: Promise<{ drained: boolean; cut: number }> | undefined;

  const server: LbServer = {
    router,
    settings,
    http,
    observability: obs,
    get url() {
      return url;
    },
    get inFlight() {
      return inFlight;
    },
    async listen(port = settings.port, host = settings.host) {
      // The first requests' limits are shared too: Redis gets up to 1 s to be ready; past that the replica starts on
      // local state (warned), and syncs once Redis answers.
      if (shared && !(await shared.ready(1_000)))
        logger.warn('shared rate-limit store (Redis) not ready after 1 s: starting on local state');
      return new Promise<string>((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, host, () => {
          http.off('error', reject);
          const a = http.address() as AddressInfo;
          const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          url = `http://${h}:${a.port}`;
          if (!apiKeys && !isLoopback(host))
            logger.warn(
              { host },
              'no client keys configured (LB_API_KEYS) and bound beyond loopback: anyone who can reach this port can use your upstream keys',
            );
          resolve(url);
        });
      });
    },
    async reload(config) {
      const next = config ?? (options.reloadConfig ? await options.reloadConfig() : undefined);
      if (!next) throw new ConfigError('reload: no config given and no reloadConfig option');
      const changes = router.reload(routerConfigOf(next));
      logger.info(changes, 'config reloaded');
      return changes;
    },
    close(timeoutMs = settings.shutdownTimeoutMs) {
      closed ??= (async () => {
        closing = true;
        dashboard.close();
        const stopped = new Promise<void>((r) => (http.listening ? http.close(() => r()) : r()));
        http.closeIdleConnections();
        let ok = true;
        if (inFlight > 0) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          ok = await new Promise<boolean>((resolve) => {
            drained = () => resolve(true);
            timer = setTimeout(() => resolve(false), timeoutMs);
          });
          clearTimeout(timer);
        }
        const cut = inFlight;
        http.closeAllConnections();
        await stopped;
        offReload();
        offProbation();
        tracing?.dispose();
        attached.dispose();
        await transport.close().catch(() => {});
        await shared?.close().catch(() => {});
        await obs.close().catch(() => {});
        return { drained: ok, cut };
      })();
      return closed;
    },
  };
  return server;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function isModelsList(path: string, method: string | undefined): boolean {
  return method === 'GET' && (path === '/models' || path.startsWith('/models?'));
}

function modelList(router: Router): unknown {
  return {
    object: 'list',
    data: router.models().map((id) => ({ id, object: 'model', created: 0, owned_by: 'lb' })),
  };
}
