import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { attachBreaker, attachHealthChecks, type BreakerHandle } from '@lb/breaker';
import type { Endpoint } from '@lb/core';
import { RedisAffinityStore } from '@lb/exchange';
import { createTracing } from '@lb/otel';
import { explainUnservable, findDialect, providerGuard, requestFeatures } from '@lb/providers';
import {
  attachRateLimit,
  createClientLimiter,
  estimateTokens,
  publishStoreHealth,
  RedisStore,
} from '@lb/ratelimit';
import { createObservability } from './observability/index.js';
import type { Integrations } from './server.js';

/**
 * The pub/sub channel replicas share breaker changes (`breaker`) or 429 cooldowns (`ratelimit`) on: one per database
 * number of the URL (`redis://h/2` → `lb:breaker:2`), since Redis channels, unlike keys, are not kept apart by
 * database.
 */
function channel(kind: 'breaker' | 'ratelimit', url: string): string {
  const db = /^rediss?:\/\/[^/]*\/(\d+)/.exec(url)?.[1] ?? '0';
  return `lb:${kind}:${db}`;
}

/** Replica names given in this process, for unique ones. */
let replicas = 0;

/**
 * A replica's name on the pub/sub channels and in the heartbeat set, after its host and process (for `opened on
 * replica …` on the other replicas' health pages; a second server in one process gets a suffix: a replica ignores
 * its own name).
 */
function replicaName(): string {
  return `${hostname()}:${process.pid}${++replicas > 1 ? `#${replicas}` : ''}`;
}

export const integrations: Integrations = {
  observability: (router, options) => createObservability(router, options),
  attach: (router, opts) => {
    const offGuard = router.addGuard(providerGuard());
    const replicaId = opts.breakerPeers || opts.limitPeers ? replicaName() : undefined;
    const rateLimit = opts.rateLimit
      ? attachRateLimit(router, { store: opts.store, peers: opts.limitPeers, replicaId })
      : undefined;
    // Without the limiter, the shared store (client limits) still publishes its health on the router's bus.
    const offStore =
      !rateLimit && opts.store?.health ? publishStoreHealth(router, opts.store.health) : undefined;
    let breaker: BreakerHandle | undefined;
    if (opts.breaker?.enabled !== false) {
      const b = opts.breaker;
      breaker = attachBreaker(router, {
        threshold: b?.threshold,
        halfOpenAfterMs: b?.halfOpenAfterMs,
        policy: b?.policy,
        peers: opts.breakerPeers,
        replicaId,
      });
    }
    const hc = opts.healthCheck?.enabled
      ? attachHealthChecks(router, {
          intervalMs: opts.healthCheck.intervalMs,
          timeoutMs: opts.healthCheck.timeoutMs,
          breaker,
          headers: probeHeaders,
        })
      : undefined;
    return {
      breaker,
      rateLimit,
      healthChecks: hc,
      dispose() {
        rateLimit?.dispose();
        hc?.dispose();
        breaker?.dispose();
        offStore?.();
        offGuard();
      },
    };
  },
  clientLimiter: (opts, store) => createClientLimiter({ ...opts, store }),
  sharedStore: (url, onError, options) => {
    // ioredis is loaded only when a Redis is configured.
    const Redis = createRequire(import.meta.url)('ioredis') as typeof import('ioredis').default;
    const client = new Redis(url, {
      // Commands fail at once while Redis is away (the local view decides meanwhile) instead of queueing.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Reconnect soon: while away, each replica holds to its share of the budgets, not the whole.
      retryStrategy: (n) => Math.min(50 * 2 ** Math.min(n, 3), 250),
    });
    client.on('error', onError);
    // Breaker changes and cooldowns go over pub/sub: a connection in subscriber mode serves nothing else, so a
    // duplicate per subscription (each subscribes again once ready: Redis forgets subscriptions with the connection).
    const subscribers = new Set<InstanceType<typeof Redis>>();
    const peers = (name: string) => ({
      publish: (message: string) => {
        if (client.status === 'ready') client.publish(name, message).catch(onError);
      },
      subscribe: (fn: (message: string) => void, onSubscribed?: () => void) => {
        const sub = client.duplicate();
        subscribers.add(sub);
        sub.on('error', onError);
        // Live once subscribed and the publishing connection is up too (what it says is heard then).
        let waiting = false;
        const live = () => {
          waiting = false;
          if (!subscribers.has(sub) || !onSubscribed) return;
          if (client.status === 'ready') onSubscribed();
          else if (!waiting) {
            waiting = true;
            client.once('ready', live);
          }
        };
        sub.on('ready', () => void sub.subscribe(name).then(live, onError));
        sub.on('message', (from: string, message: string) => {
          if (from === name) fn(message);
        });
        return () => {
          subscribers.delete(sub);
          sub.disconnect();
        };
      },
    });
    const store = new RedisStore(client, {
      commandTimeoutMs: options.commandTimeoutMs,
      replicas: options.replicas,
      heartbeatMs: 1000,
      replicaId: replicaName(),
    });
    return {
      store,
      health: store.health,
      affinity: new RedisAffinityStore(client, { onError: (e) => onError(e as Error) }),
      breakerPeers: peers(channel('breaker', url)),
      limitPeers: peers(channel('ratelimit', url)),
      status: () => client.status,
      client,
      ready: (ms) =>
        client.status === 'ready'
          ? Promise.resolve(true)
          : new Promise<boolean>((resolve) => {
              const done = (ok: boolean) => {
                clearTimeout(timer);
                client.off('ready', onReady);
                resolve(ok);
              };
              const onReady = () => done(true);
              const timer = setTimeout(() => done(false), ms);
              client.once('ready', onReady);
            }),
      close: async () => {
        await store.close();
        for (const sub of subscribers) sub.disconnect();
        subscribers.clear();
        if (client.status === 'ready') await client.quit();
        else client.disconnect();
      },
    };
  },
  estimateTokens: (json) => estimateTokens(json),
  tracing: (router) => createTracing(router, { requestKind: 'server' }),
  dialect: (name) => findDialect(name),
  explain: (router, operation, model, features) => explainUnservable(router, { operation, model, features }),
  requestFeatures: (operation, json) => requestFeatures(operation, json),
};

/** Probe auth for endpoints whose dialect is not OpenAI's (Azure `api-key`, Anthropic `x-api-key`). */
function probeHeaders(endpoint: Endpoint): Record<string, string> | undefined {
  if (endpoint.provider === 'openai') return undefined;
  const d = findDialect(endpoint.provider);
  if (!d) return undefined;
  return d.prepare({
    endpoint,
    operation: 'models.list',
    method: 'GET',
    path: endpoint.healthCheck,
    headers: {},
    body: undefined,
    json: undefined,
    upstreamModel: undefined,
    stream: false,
  }).headers;
}
