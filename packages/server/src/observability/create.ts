// `createObservability`: wires the server's logs, metrics (`metrics.ts`), bus listeners (`listeners.ts`), the
// `/health` and `/stats` views (`health-view.ts`, `stats-view.ts`) and the request log into one handle.
import type { Router } from '@lb/core';
import { healthOf } from './health-view.js';
import { listenToBus } from './listeners.js';
import { createLogger } from './logger.js';
import { Metrics, PROMETHEUS_CONTENT_TYPE } from './metrics.js';
import { RequestLog } from './request-log.js';
import { safeSnapshot } from './sources.js';
import { statsBody, Totals } from './stats-view.js';
import type { Observability, ObservabilityOptions } from './types.js';
import { validateObservability } from './validate.js';

/**
 * Builds the server's observability over a router: a pino logger, Prometheus metrics in a registry of its own,
 * `/health` and `/stats` bodies and the JSON Lines request log. Everything about endpoints and attempts comes from
 * `router.on(...)` and `router.snapshot()`.
 *
 * @example
 * ```ts
 * const obs = createObservability(router, { metricsEnabled: true, logLevel: 'info', requestLog: { enabled: false } });
 * // in the HTTP server:
 * //   GET /metrics → res.setHeader('content-type', obs.metricsContentType); res.end(await obs.metricsText());
 * //   GET /health  → const { httpStatus, body } = obs.health(); res.writeHead(httpStatus).end(JSON.stringify(body));
 * //   per request  → obs.recordRequest({ requestId, client, method, path, model, stream, status, latencyMs, attempts: 1 });
 * await obs.close();
 * ```
 */
export function createObservability(router: Router, options: ObservabilityOptions = {}): Observability {
  const { metricsEnabled, level, requestLog: rl } = validateObservability(router, options);
  const now = options.now ?? Date.now;
  const startedAt = now();

  const secrets = () => {
    const out: string[] = [];
    for (const ep of router.endpoints) {
      const k = ep.apiKey;
      if (k) out.push(k);
    }
    return out;
  };
  const { logger, routing, flush } = createLogger(level, options.debug, options.logDestination, secrets);
  const requestLog = rl.enabled ? new RequestLog(rl.path) : undefined;
  const metrics = new Metrics(router, options.version, options.processMetrics ?? true, options.store);
  const totals = new Totals();
  const unlisten = listenToBus(router, metrics, totals, logger, routing);
  let closed = false;

  return {
    logger,
    metricsContentType: PROMETHEUS_CONTENT_TYPE,

    async metricsText() {
      if (!metricsEnabled) return '';
      return metrics.text(router.snapshot(), {
        breakers: safeSnapshot(options.breaker),
        limits: safeSnapshot(options.rateLimit),
        probes: safeSnapshot(options.healthChecks),
        heldBytes: options.heldBytes,
      });
    },

    health() {
      const t = now();
      const snap = router.snapshot();
      return healthOf({
        t,
        startedAt,
        version: options.version,
        snap,
        breakers: safeSnapshot(options.breaker),
        probes: safeSnapshot(options.healthChecks),
        limits: safeSnapshot(options.rateLimit),
        store: options.store,
        sharedStore: options.sharedStore,
      });
    },

    stats() {
      const t = now();
      const snap = router.snapshot();
      return statsBody(
        t,
        startedAt,
        snap,
        safeSnapshot(options.breaker),
        safeSnapshot(options.rateLimit),
        metrics,
        totals,
      );
    },

    recordRequest(rec) {
      if (closed) return;
      metrics.recordRequest(rec);
      totals.recordRequest(rec);
      if (requestLog) requestLog.write(rec, now());
    },

    async close() {
      if (closed) return;
      closed = true;
      unlisten();
      await Promise.all([requestLog?.close(), flush()]);
    },
  };
}
