import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BreakerHandle, BreakerPeers, HealthCheckHandle } from '@lb/breaker';
import { ConfigError, createRouter, type LbError, maskKey, Router, type RouterConfig } from '@lb/core';
import {
  type AffinityStore,
  type FallbackConfig,
  Hedger,
  hasFallbacks,
  MemoryAffinityStore,
  modelsWithFallbacks,
} from '@lb/exchange';
import type { Dialect } from '@lb/providers';
import type { ClientLimiter, RateLimitHandle, RateLimitPeers, Store, StoreHealth } from '@lb/ratelimit';
import { RedisBudgetStore, type RedisScriptClient, registerCheapest } from '@lb/spend';
import type { Agent } from 'undici';
import {
  type AccessPolicy,
  accessPolicy,
  adminRefusal,
  crossSiteRefusal,
  type Listener,
  mayReadOperations,
} from './access.js';
import { createDashboard } from './dashboard/index.js';
import { answerClientError, BodyBudget } from './front.js';
import { clientKeyOf, sendJson, sendStatus } from './http.js';
import type { HealthBody, Observability, SharedStoreView, StatsBody } from './observability/types.js';
import type { ObservabilityFactory } from './observe.js';
import {
  type BreakerSettings,
  type HealthCheckSettings,
  isLoopback,
  resolveSettings,
  type ServerConfigInput,
  type ServerSettings,
} from './options.js';
import { BadPath, normalizeTarget } from './paths.js';
import type { ProxyContext, TraceHooks } from './proxy/context.js';
import { Exchange } from './proxy/exchange.js';
import { Redactor, secretsOf } from './redact.js';
import { diffSettings, type ReloadReport, same } from './reload.js';
import { type ClientIdentity, memoryVault, type RedisHashClient, redisVault, Wallet } from './spend.js';
import { adminKeys, type KeyLimiters, keyLimiters } from './spend-routes.js';
import { createTransport, HoldBudget } from './upstream.js';

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
  let settings = resolveSettings(options.server);
  // Redis errors repeat while it is away (every reconnect attempt): the store's state changes are logged once each
  // (observability); the errors themselves at debug.
  const shared =
    settings.redisUrl !== undefined && integ.sharedStore
      ? integ.sharedStore(
          settings.redisUrl,
          (err) => logger.debug({ err: err.message }, 'shared rate-limit store (Redis) error'),
          { commandTimeoutMs: settings.redisCommandTimeoutMs, replicas: settings.replicas },
        )
      : undefined;
  // Virtual keys, budgets and cost (spend.ts): the key ring and prices swap on reload, the counters live on.
  const redisClient = shared?.client as (RedisScriptClient & RedisHashClient) | undefined;
  const unpriced = new Set<string>();
  const wallet = new Wallet({
    store: redisClient ? new RedisBudgetStore(redisClient) : undefined,
    replicas: settings.replicas,
    vault: redisClient ? redisVault(redisClient) : memoryVault(),
    onUnknownPrice: (model) => {
      if (unpriced.has(model)) return;
      unpriced.add(model);
      obs.logger.warn(
        { model },
        `no price for model ${model}: its cost is unknown (set [prices."${model}"])`,
      );
    },
    onStoreError: (err) => obs.logger.debug({ err: (err as Error)?.message }, 'budget store (Redis) error'),
  });
  wallet.configure(options.spend, settings.apiKeys);
  // `strategy = "cheapest"` compares the config's prices (endpoint prices in `endpoint.meta.price` win).
  registerCheapest({ prices: wallet.prices });
  const router = options.router instanceof Router ? options.router : createRouter(options.router);
  let breakerSettings = options.breaker;
  let healthCheckSettings = options.healthCheck;
  const attach = () =>
    integ.attach(router, {
      breaker: breakerSettings,
      healthCheck: healthCheckSettings,
      rateLimit: options.rateLimit !== false,
      store: shared?.store,
      breakerPeers: shared?.breakerPeers,
      limitPeers: shared?.limitPeers,
    });
  // Replaced whole when a reload changes breaker or health-check settings: observers read it through `current`.
  let attached = attach();
  const current = <K extends 'breaker' | 'rateLimit' | 'healthChecks'>(k: K) =>
    attached[k] === undefined
      ? undefined
      : {
          snapshot: (): ReturnType<NonNullable<(typeof attached)[K]>['snapshot']> =>
            (attached[k]?.snapshot() ?? {}) as ReturnType<NonNullable<(typeof attached)[K]>['snapshot']>,
        };
  const holdBudget = new HoldBudget(settings.streamProbationMaxBytes);
  /** The shared store's state for /health and the dashboard (its typed health from @lb/ratelimit). */
  const sharedStoreView = (): SharedStoreView => {
    const h = shared!.health.status();
    return {
      kind: 'redis',
      status: h.state,
      connection: shared!.status(),
      since: new Date(h.since).toISOString(),
      reason: h.reason,
      replicas: h.replicas,
      share: h.share,
      errors: h.errors,
      commandTimeoutMs: h.commandTimeoutMs,
    };
  };
  const obs = integ.observability(router, {
    metricsEnabled: settings.metricsEnabled,
    logLevel: settings.logLevel,
    requestLog: settings.requestLog,
    debug: options.debug ?? process.env.DEBUG,
    logDestination: options.logDestination,
    breaker: current('breaker'),
    rateLimit: current('rateLimit'),
    healthChecks: current('healthChecks'),
    heldBytes: () => holdBudget.used,
    store: shared?.health,
    sharedStore: shared ? () => sharedStoreView() : undefined,
    version: options.version,
  });
  const logger = obs.logger;
  const transport: Agent = createTransport(settings);
  // Swapped whole by a reload, so a request sees one config or the next, never a mix.
  let limiters: KeyLimiters = keyLimiters((o) => integ.clientLimiter(o, shared?.store));
  let policy: AccessPolicy = accessPolicy(wallet, settings.adminKey);
  const makeLimiter = (s: ServerSettings) =>
    s.clientRateLimit.enabled ? integ.clientLimiter(s.clientRateLimit, shared?.store) : undefined;
  let limiter = makeLimiter(settings);
  const bodies = new BodyBudget(settings.maxInflightBodyBytes);
  const explain = integ.explain;
  const tracing = integ.tracing?.(router);
  const px: ProxyContext = {
    streams: new Set(),
    router,
    transport,
    settings,
    holdBudget,
    defaultModel: options.defaultModel,
    fallbacks: hasFallbacks(options.fallbacks) ? options.fallbacks : undefined,
    affinity: shared?.affinity ?? new MemoryAffinityStore(),
    hedger: Hedger.enabled(options.hedge) ? new Hedger(router, options.hedge!) : undefined,
    streamContinue: options.streamContinue === true,
    dialect: integ.dialect,
    explain: explain ? (op, model, features) => explain(router, op, model, features) : undefined,
    estimate: undefined,
    features: undefined,
    trace: tracing,
    wallet,
    askUsage: true,
    estimateTokens: integ.estimateTokens,
    record: (rec) => obs.recordRequest(rec),
    onError: (err, requestId) => logger.error({ err, requestId }, 'unexpected error while proxying'),
    redactor: new Redactor([]),
  };
  /** What must never reach a client: every endpoint's key and secret headers, gateway keys, the admin key. */
  const syncRedactor = () => {
    px.redactor = new Redactor(secretsOf(router.endpoints, [...settings.apiKeys, settings.adminKey]));
  };

  // Token estimates cost a walk over the body: only while some endpoint has a tokens-per-minute limit. Features
  // (`n` > 1…) cost a parse of the body: only while some endpoint's provider lacks one.
  const syncBodyNeeds = () => {
    px.estimate = router.endpoints.some((e) => e.limits.tpm) ? integ.estimateTokens : undefined;
    px.features = router.endpoints.some((e) => (integ.dialect(e.provider)?.lacks?.length ?? 0) > 0)
      ? integ.requestFeatures
      : undefined;
    // Older Azure OpenAI API versions refuse `stream_options`: with an Azure endpoint in the pool, a stream is priced
    // only when its client asked for the usage itself.
    px.askUsage = !router.endpoints.some((e) => e.provider === 'azure');
  };
  syncBodyNeeds();
  syncRedactor();
  const offReload = router.on('config:reloaded', () => {
    syncBodyNeeds();
    syncRedactor();
  });
  // The dashboard taps finished requests only while one is open (the hub installs and removes its tap).
  const recordOnly = px.record;
  const dashboard = createDashboard(
    {
      router,
      health: () => obs.health().body as HealthBody,
      stats: () => obs.stats() as StatsBody,
      sharedStore: shared ? () => sharedStoreView() : undefined,
      tap: (fn) => {
        px.record = fn
          ? (rec) => {
              recordOnly(rec);
              fn(rec);
            }
          : recordOnly;
      },
    },
    (req, listener) => adminRefusal(req, listener, policy),
  );
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
    const url = normalizeTarget(req.url ?? '/');
    if (url instanceof BadPath) {
      res.on('close', onDone);
      req.resume();
      sendStatus(res, 400, url.message);
      return;
    }
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
      let clientId: string | undefined;
      let who: ClientIdentity | undefined;
      const clients = policy.clients;
      if (clients !== undefined) {
        const key = clientKeyOf(req);
        who = key === undefined ? undefined : clients.identify(key);
        if (who === undefined) {
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
        client = who.mask;
        clientId = who.id;
      } else clientId = client = req.socket.remoteAddress;
      const lim = who !== undefined && who.key.name !== undefined ? limiters.of(who, limiter) : limiter;
      if (lim !== undefined) {
        const r = lim.take(clientId ?? 'anonymous');
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
            lim === limiter
              ? `Rate limit reached for this client: ${r.limit} requests per ${settings.clientRateLimit.windowMs} ms`
              : `Rate limit reached for key ${who!.mask}: ${r.limit} requests per ${limiters.windowOf(lim)} ms`,
            r.retryAfterMs,
          );
          return;
        }
      }
      // The exchange's own 'close' listener counts the request done (one listener per response).
      const done = withBody(req, res);
      if (done !== undefined) {
        const ex = new Exchange(px, req, res, path, client, done);
        ex.who = who;
        ex.run();
      }
      return;
    }
    res.on('close', onDone);
    internal(req, res, path ?? url, 'main').catch((err) => internalFailed(err, res));
  };

  /**
   * The request's share of the in-flight body budget (`maxInflightBodyBytes`), given back when its response closes;
   * the `done` to hand the exchange, or undefined when the request was answered here (503/413, nothing read).
   */
  const withBody = (req: IncomingMessage, res: ServerResponse): (() => void) | undefined => {
    const cl = req.headers['content-length'];
    if (cl !== undefined) {
      const n = Number(cl);
      // Over the body limit: the exchange answers 413 and reads the rest without keeping it.
      if (!(n > 0) || n > settings.bodyLimitBytes) return onDone;
      if (bodies.take(n))
        return () => {
          bodies.give(n);
          onDone();
        };
      res.on('close', onDone);
      res.setHeader('connection', 'close');
      const tooBig = n > bodies.max;
      sendStatus(
        res,
        tooBig ? 413 : 503,
        tooBig
          ? `Request body of ${n} bytes exceeds what the gateway reads at once (${bodies.max} bytes, LB_MAX_INFLIGHT_BODY_BYTES)`
          : 'The gateway is reading too many request bodies at once (LB_MAX_INFLIGHT_BODY_BYTES): retry shortly',
        1000,
      );
      req.resume();
      return undefined;
    }
    if (req.headers['transfer-encoding'] === undefined) return onDone;
    // Chunked: counted as it arrives; past the budget the request is cut (its size was never announced).
    let got = 0;
    req.on('data', (c: Buffer) => {
      got += c.length;
      bodies.used += c.length;
      if (bodies.used > bodies.max) req.destroy();
    });
    return () => {
      bodies.give(got);
      onDone();
    };
  };

  const internalFailed = (err: unknown, res: ServerResponse) => {
    logger.error({ err }, 'internal route failed');
    if (!res.headersSent) sendStatus(res, 500, 'Internal gateway error');
  };

  /** The operations listener: admin and operations routes only (no proxying), with no key unless `adminKey` is set. */
  const handleOps = (req: IncomingMessage, res: ServerResponse): void => {
    const url = normalizeTarget(req.url ?? '/');
    if (url instanceof BadPath) {
      req.resume();
      sendStatus(res, 400, url.message);
      return;
    }
    internal(req, res, url.startsWith('/v1/') ? url.slice(3) : url, 'ops').catch((err) =>
      internalFailed(err, res),
    );
  };

  const internal = async (
    req: IncomingMessage,
    res: ServerResponse,
    url: string,
    listener: Listener,
  ): Promise<void> => {
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
        // Probes keep their status code; the detail (endpoints, URLs, key masks) is for operators only.
        sendJson(
          res,
          h.httpStatus,
          mayReadOperations(req, listener, policy)
            ? h.body
            : { status: (h.body as { status?: string }).status },
        );
        return;
      }
      if (p === '/metrics' || p === '/stats') {
        if (!mayReadOperations(req, listener, policy))
          return sendStatus(
            res,
            401,
            `${p} needs a gateway key (LB_API_KEYS) or the admin key (LB_ADMIN_KEY) on this port, or serve it without a key on the operations listener (LB_OPS_PORT)`,
          );
        if (p === '/stats') return sendJson(res, 200, { ...obs.stats(), spend: wallet.ledger.snapshot() });
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
      if (p === '/models' && listener === 'main') {
        if (!checkClient(req, res)) return;
        sendJson(res, 200, modelList(router, px.fallbacks));
        return;
      }
    }
    if (p.startsWith('/admin/')) return admin(req, res, p, method, listener);
    if (p.startsWith('/dashboard') && dashboard.handle(req, res, p, method, listener)) return;
    sendStatus(res, 404, `Unknown route ${method} ${p}`);
  };

  const checkClient = (req: IncomingMessage, res: ServerResponse): boolean => {
    const clients = policy.clients;
    if (clients === undefined) return true;
    const key = clientKeyOf(req);
    if (key !== undefined && clients.identify(key) !== undefined) return true;
    sendStatus(
      res,
      401,
      key === undefined ? 'Missing API key' : `Incorrect API key provided: ${maskKey(key)}`,
    );
    return false;
  };

  const admin = async (
    req: IncomingMessage,
    res: ServerResponse,
    p: string,
    method: string,
    listener: Listener,
  ): Promise<void> => {
    const refused = adminRefusal(req, listener, policy);
    if (refused) return sendStatus(res, refused.status, refused.message);
    if (method === 'GET' && p === '/admin/endpoints') return sendJson(res, 200, router.snapshot());
    if (p === '/admin/keys' || p.startsWith('/admin/keys/')) {
      if (method === 'POST') {
        const crossSite = crossSiteRefusal(req);
        if (crossSite) return sendStatus(res, crossSite.status, crossSite.message);
      }
      return adminKeys(req, res, p, method, wallet, (msg, fields) => logger.info(fields, msg));
    }
    if (method !== 'POST') return sendStatus(res, 405, `Use POST for ${p}`);
    const crossSite = crossSiteRefusal(req);
    if (crossSite) return sendStatus(res, crossSite.status, crossSite.message);
    const m = /^\/admin\/endpoints\/([^/]+)\/(disable|enable)$/.exec(p);
    if (m) {
      let id: string;
      try {
        id = decodeURIComponent(m[1]);
      } catch {
        return sendStatus(res, 400, 'The endpoint id in the path is not valid percent-encoded UTF-8');
      }
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

  // Header and request timeouts are checked every second (node's default: every 30 s), so a stalled client gets its
  // 408 on time.
  const http = createHttpServer(
    { noDelay: true, keepAlive: true, keepAliveTimeout: 65_000, connectionsCheckingInterval: 1_000 },
    handle,
  );
  http.keepAliveTimeout = 65_000;
  http.on('clientError', answerClientError);
  const ops =
    settings.opsPort === undefined
      ? undefined
      : createHttpServer({ noDelay: true, keepAlive: true }, handleOps);
  ops?.on('clientError', answerClientError);

  /** Listens on `port`/`host`; resolves with the URL. */
  const listenOn = (s: Server, port: number, host: string) =>
    new Promise<string>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => {
        s.off('error', reject);
        const a = s.address() as AddressInfo;
        const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve(`http://${h}:${a.port}`);
      });
    });

  let url: string | undefined;
  let opsUrl: string | undefined;
  let closed: Promise<{ drained: boolean; cut: number }> | undefined;

  const server: LbServer = {
    router,
    get settings() {
      return settings;
    },
    http,
    observability: obs,
    get url() {
      return url;
    },
    get opsUrl() {
      return opsUrl;
    },
    get inFlight() {
      return inFlight;
    },
    async listen(port = settings.port, host = settings.host) {
      // The first requests' limits are shared too: Redis gets up to 1 s to be ready; past that the replica starts on
      // local state (warned), and syncs once Redis answers.
      if (shared && !(await shared.ready(1_000)))
        logger.warn('shared rate-limit store (Redis) not ready after 1 s: starting on local state');
      await wallet
        .loadVault()
        .catch((err) =>
          logger.warn({ err: (err as Error).message }, "could not load the admin API's keys from the store"),
        );
      if (ops !== undefined && !ops.listening)
        opsUrl = await listenOn(ops, settings.opsPort ?? 0, settings.opsHost);
      url = await listenOn(http, port, host);
      if (!policy.clients && !isLoopback(host))
        logger.warn(
          { host },
          'no client keys configured (LB_API_KEYS) and bound beyond loopback: anyone who can reach this port can use your upstream keys',
        );
      if (ops !== undefined && !isLoopback(settings.opsHost) && policy.adminKey === undefined)
        logger.warn(
          { host: settings.opsHost },
          'the operations listener (LB_OPS_PORT) is bound beyond loopback without an admin key (LB_ADMIN_KEY): anyone who can reach it can disable endpoints and reload the config',
        );
      return url;
    },
    async reload(config) {
      const next = config ?? (options.reloadConfig ? await options.reloadConfig() : undefined);
      if (!next) throw new ConfigError('reload: no config given and no reloadConfig option');
      // Everything is validated and built before anything is swapped: a bad config changes nothing.
      const input =
        'router' in next && next.router && typeof next.router === 'object'
          ? (next as ServerConfigInput)
          : undefined;
      let applied: string[] = [];
      let restartRequired: string[] = [];
      let nextSettings = settings;
      let nextLimiter = limiter;
      // A section the new config leaves out keeps its running values (a `{ router }` alone never opens the gateway).
      if (input?.server !== undefined) {
        const diff = diffSettings(settings, resolveSettings(input.server));
        nextSettings = diff.settings;
        applied = diff.applied;
        restartRequired = diff.restartRequired;
        if (!same(settings.clientRateLimit, nextSettings.clientRateLimit))
          nextLimiter = makeLimiter(nextSettings);
      }
      const nextBreaker = input?.breaker ?? breakerSettings;
      const nextHealthCheck = input?.healthCheck ?? healthCheckSettings;
      const reattach = !same(breakerSettings, nextBreaker) || !same(healthCheckSettings, nextHealthCheck);
      // Keys and prices are built (and checked) before anything is swapped.
      const nextRouter = routerConfigOf(next);
      // A whole config (with its server section, as the CLI loads it) brings its keys even when it has none left.
      const nextSpend =
        input?.server !== undefined || input?.spend !== undefined ? input?.spend : options.spend;
      const nextWallet = input !== undefined ? wallet.prepare(nextSpend, nextSettings.apiKeys) : undefined;
      if (nextWallet !== undefined) registerCheapest({ prices: nextWallet.prices });
      const changes = router.reload(nextRouter);
      if (input !== undefined) {
        options.spend = nextSpend;
        wallet.swap(nextWallet!);
        // Keys other replicas created, rotated or revoked through the admin API since (Redis).
        if (wallet.vault.kind === 'redis')
          await wallet
            .loadVault()
            .catch((err) =>
              logger.warn({ err: (err as Error).message }, "could not reload the admin API's keys"),
            );
        limiters = keyLimiters((o) => integ.clientLimiter(o, shared?.store));
        settings = nextSettings;
        px.settings = nextSettings;
        if (input.server !== undefined || 'defaultModel' in input) px.defaultModel = input.defaultModel;
        px.fallbacks = hasFallbacks(input.fallbacks) ? input.fallbacks : undefined;
        // Hedging and stream continuation follow a whole reloaded config, as `defaultModel` does (a new hedger's
        // latency sketches and budgets start afresh).
        if (input.server !== undefined || 'hedge' in input)
          px.hedger = Hedger.enabled(input.hedge) ? new Hedger(router, input.hedge!) : undefined;
        if (input.server !== undefined || 'streamContinue' in input)
          px.streamContinue = input.streamContinue === true;
        policy = accessPolicy(wallet, nextSettings.adminKey);
        limiter = nextLimiter;
        bodies.max = nextSettings.maxInflightBodyBytes;
        syncRedactor();
      }
      if (reattach) {
        if (!same(breakerSettings, nextBreaker)) applied.push('breaker');
        if (!same(healthCheckSettings, nextHealthCheck)) applied.push('healthCheck');
        breakerSettings = nextBreaker;
        healthCheckSettings = nextHealthCheck;
        // Circuits start closed under new breaker settings (their counts were kept under the old ones).
        attached.dispose();
        attached = attach();
      }
      const report: ReloadReport = { ...changes, applied, restartRequired };
      logger.info(report, 'config reloaded');
      if (restartRequired.length)
        logger.warn(
          { restartRequired },
          `config reloaded, but ${restartRequired.join(', ')} changed and need(s) a restart: the running value(s) are kept`,
        );
      return report;
    },
    close(timeoutMs = settings.shutdownTimeoutMs) {
      closed ??= (async () => {
        closing = true;
        dashboard.close();
        const stopped = new Promise<void>((r) => (http.listening ? http.close(() => r()) : r()));
        http.closeIdleConnections();
        if (ops?.listening) {
          ops.close();
          ops.closeAllConnections();
        }
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
        if (!ok && px.streams.size > 0) {
          // Streams still running end with an SSE error event, not a cut connection; written before the sockets close.
          for (const x of [...px.streams]) x.cutForShutdown();
          await new Promise((r) => setImmediate(r));
        }
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

function isModelsList(path: string, method: string | undefined): boolean {
  return method === 'GET' && (path === '/models' || path.startsWith('/models?'));
}

function modelList(router: Router, fallbacks: FallbackConfig | undefined): unknown {
  return {
    object: 'list',
    data: modelsWithFallbacks(router.models(), fallbacks).map((id) => ({
      id,
      object: 'model',
      created: 0,
      owned_by: 'lb',
    })),
  };
}
