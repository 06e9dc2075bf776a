import { createRequire } from 'node:module';
import { attachBreaker, attachHealthChecks, type BreakerHandle } from '@lb/breaker';
import type { Endpoint } from '@lb/core';
import { explainUnservable, findDialect, providerGuard, requestFeatures } from '@lb/providers';
import { attachRateLimit, createClientLimiter, estimateTokens, RedisStore, type Store } from '@lb/ratelimit';
import { createObservability } from './observability/index.js';
import type { Integrations } from './server.js';

export const integrations: Integrations = {
  observability: (router, options) => createObservability(router, options),
  attach: (router, opts) => {
    const offGuard = router.addGuard(providerGuard());
    const rateLimit = opts.rateLimit
      ? attachRateLimit(router, { store: opts.store as Store | undefined })
      : undefined;
    let breaker: BreakerHandle | undefined;
    if (opts.breaker?.enabled !== false) {
      const b = opts.breaker;
      breaker = attachBreaker(router, {
        threshold: b?.threshold,
        halfOpenAfterMs: b?.halfOpenAfterMs,
        policy: b?.policy as 'consecutive' | 'sampling' | undefined,
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
        offGuard();
      },
    };
  },
  clientLimiter: (opts, store) => createClientLimiter({ ...opts, store: store as Store | undefined }),
  sharedStore: (url, onError) => {
    // ioredis is loaded only when a Redis is configured.
    const Redis = createRequire(import.meta.url)('ioredis') as typeof import('ioredis').default;
    const client = new Redis(url, {
      // Commands fail at once while Redis is away (the local view decides meanwhile) instead of queueing.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (n) => Math.min(100 * 2 ** Math.min(n, 6), 5_000),
    });
    client.on('error', onError);
    return {
      store: new RedisStore(client),
      status: () => client.status,
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
        if (client.status === 'ready') await client.quit();
        else client.disconnect();
      },
    };
  },
  estimateTokens: (json) => estimateTokens(json),
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
