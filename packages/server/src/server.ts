// \`buildServer\`: lb-server assembled from its parts. The integrations (shared store, wallet, router and its guards,
// observability, transport, tracing, dashboard) are wired here into the state the parts share (\`server/state.ts\`);
// the listeners (\`server/listeners.ts\`, \`server/listen.ts\`), the operations and admin routes (\`server/routes.ts\`,
// \`server/admin.ts\`), reload (\`server/apply-reload.ts\`) and shutdown (\`server/shutdown.ts\`) live in their own files.
import { ConfigError, createRouter, Router } from '@lb/core';
import { Hedger, hasFallbacks, MemoryAffinityStore } from '@lb/exchange';
import { RedisBudgetStore, type RedisScriptClient, registerCheapest } from '@lb/spend';
import type { Agent } from 'undici';
import { type AccessPolicy, accessPolicy, adminRefusal } from './access.js';
import { createDashboard } from './dashboard/index.js';
import { BodyBudget } from './front.js';
import type { HealthBody, SharedStoreView, StatsBody } from './observability/types.js';
import {
  type BreakerSettings,
  type HealthCheckSettings,
  resolveSettings,
  type ServerSettings,
} from './options.js';
import type { ProxyContext } from './proxy/context.js';
import { Redactor, secretsOf } from './redact.js';
import { applyReload } from './server/apply-reload.js';
import { createListeners, startListening } from './server/listen.js';
import { shutDown } from './server/shutdown.js';
import type { ServerState } from './server/state.js';
import type { CreateServerOptions, Integrations, LbServer } from './server/types.js';
import { memoryVault, type RedisHashClient, redisVault, Wallet } from './spend.js';
import { type KeyLimiters, keyLimiters } from './spend-routes.js';
import { createTransport, HoldBudget } from './upstream.js';

export type { CreateServerOptions, Integrations, LbServer } from './server/types.js';

/** Builds the server from options and the integration hooks. */
export function buildServer(options: CreateServerOptions, integ: Integrations): LbServer {
  if (!options || typeof options !== 'object' || !options.router)
    throw new ConfigError(`createServer: expected { router, server? }, received ${typeof options}`);
  const settings = resolveSettings(options.server);
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
  const attachWith = (breaker: BreakerSettings | undefined, healthCheck: HealthCheckSettings | undefined) =>
    integ.attach(router, {
      breaker,
      healthCheck,
      rateLimit: options.rateLimit !== false,
      store: shared?.store,
      breakerPeers: shared?.breakerPeers,
      limitPeers: shared?.limitPeers,
    });
  // Replaced whole when a reload changes breaker or health-check settings: observers read it through `current`.
  const attached = attachWith(options.breaker, options.healthCheck);
  const current = <K extends 'breaker' | 'rateLimit' | 'healthChecks'>(k: K) =>
    attached[k] === undefined
      ? undefined
      : {
          snapshot: (): ReturnType<NonNullable<(typeof attached)[K]>['snapshot']> =>
            (st.attached[k]?.snapshot() ?? {}) as ReturnType<NonNullable<(typeof attached)[K]>['snapshot']>,
        };
  const probationBudget = new HoldBudget(settings.streamProbationMaxBytes);
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
    heldBytes: () => probationBudget.used,
    store: shared?.health,
    sharedStore: shared ? () => sharedStoreView() : undefined,
    version: options.version,
  });
  const logger = obs.logger;
  const transport: Agent = createTransport(settings);
  // Swapped whole by a reload, so a request sees one config or the next, never a mix.
  const limiters: KeyLimiters = keyLimiters((o) => integ.clientLimiter(o, shared?.store));
  const policy: AccessPolicy = accessPolicy(wallet, settings.adminKey);
  const makeLimiter = (s: ServerSettings) =>
    s.clientRateLimit.enabled ? integ.clientLimiter(s.clientRateLimit, shared?.store) : undefined;
  const limiter = makeLimiter(settings);
  const bodies = new BodyBudget(settings.maxInflightBodyBytes);
  const explain = integ.explain;
  const tracing = integ.tracing?.(router);
  const px: ProxyContext = {
    streams: new Set(),
    router,
    transport,
    settings,
    probationBudget,
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
    px.redactor = new Redactor(secretsOf(router.endpoints, [...px.settings.apiKeys, px.settings.adminKey]));
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
    (req, listener) => adminRefusal(req, listener, st.policy),
  );

  const st: ServerState = {
    options,
    integ,
    router,
    px,
    obs,
    logger,
    wallet,
    shared,
    bodies,
    dashboard,
    settings,
    policy,
    limiter,
    limiters,
    breakerSettings: options.breaker,
    healthCheckSettings: options.healthCheck,
    attached,
    inFlight: 0,
    closing: false,
    drained: undefined,
    attach: () => attachWith(st.breakerSettings, st.healthCheckSettings),
    makeLimiter,
    syncRedactor,
  };
  // A probation that ends lets the endpoint's other held streams go live (after the listener's caller is done).
  const offProbation = router.on('endpoint:probation', (e) => {
    if (!e.on) queueMicrotask(() => probationBudget.release(e.endpointId));
  });

  const { http, ops } = createListeners(st);
  let url: string | undefined;
  let opsUrl: string | undefined;
  let closed: Promise<{ drained: boolean; cut: number }> | undefined;

  return {
    router,
    get settings() {
      return st.settings;
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
      return st.inFlight;
    },
    async listen(port = st.settings.port, host = st.settings.host) {
      url = await startListening(st, http, ops, port, host, (u) => {
        opsUrl = u;
      });
      return url;
    },
    reload(config) {
      return applyReload(st, config);
    },
    close(timeoutMs = st.settings.shutdownTimeoutMs) {
      closed ??= shutDown(
        st,
        { http, ops, transport, dispose: [offReload, offProbation, () => tracing?.dispose()] },
        timeoutMs,
      );
      return closed;
    },
  };
}
