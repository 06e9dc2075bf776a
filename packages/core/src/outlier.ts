import { ConfigError } from './errors.js';
import type { RouterEvents } from './events.js';
import type { Router } from './router.js';

/**
 * Passive outlier ejection: what a router does about a failing endpoint when nothing else is attached. On by
 * default, so that `createRouter({ endpoints })` alone stops sending traffic to a dead endpoint.
 *
 * After `consecutiveFailures` failures in a row that would count for a circuit breaker (5xx, timeouts, connection
 * errors — not 4xx, not 429s, which cool down on their own), the endpoint leaves rotation for `ejectionMs`
 * (`status: 'unhealthy'`, reason `outlier: …`), then comes back by itself. If its first attempt back fails too, it
 * leaves again for twice as long (up to `maxEjectionMs`); one success resets the count. It never ejects the last
 * endpoint in rotation (it would only turn that endpoint's errors into "no healthy endpoint").
 *
 * It steps aside while a guard that ejects by itself is attached (`Guard.ejects`: `@lb/breaker` is one), so an
 * endpoint is never out for two reasons at once. It costs nothing on the hot path: it listens to
 * `attempt:failure` only, and reads the router's own consecutive-failure count.
 *
 * @example
 * createRouter({ endpoints, outlierEjection: { consecutiveFailures: 3, ejectionMs: 10_000 } });
 * createRouter({ endpoints, outlierEjection: false }); // off: every endpoint keeps its share, dead or not
 */
export interface OutlierEjectionOptions {
  /** Failures in a row (that count for a breaker) that eject an endpoint. Default 5. */
  consecutiveFailures?: number;
  /** How long the first ejection lasts, ms. Default 30000. */
  ejectionMs?: number;
  /** Longest ejection after repeated ones (each doubles), ms. Default 300000. */
  maxEjectionMs?: number;
}

export const OUTLIER_DEFAULTS: Readonly<Required<OutlierEjectionOptions>> = Object.freeze({
  consecutiveFailures: 5,
  ejectionMs: 30_000,
  maxEjectionMs: 300_000,
});

/** Checks `config.outlierEjection`; throws a ConfigError naming the received value. */
export function validateOutlierEjection(value: unknown): void {
  if (value === undefined || value === false || value === true) return;
  if (typeof value !== 'object' || value === null) {
    throw new ConfigError(
      `config.outlierEjection: expected false or { consecutiveFailures, ejectionMs, maxEjectionMs }, received ${JSON.stringify(value)}`,
    );
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(k in OUTLIER_DEFAULTS)) throw new ConfigError(`config.outlierEjection.${k}: unknown option`);
    const v = o[k];
    const min = k === 'consecutiveFailures' ? 1 : 0;
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < min)) {
      throw new ConfigError(
        `config.outlierEjection.${k}: expected a number >= ${min}, received ${JSON.stringify(v)}`,
      );
    }
  }
}

/**
 * Attaches outlier ejection to a router (the router does this itself; see {@link OutlierEjectionOptions}). Reads
 * `router.config.outlierEjection` at each failure, so a reload that turns it off or changes it takes effect at once.
 * Returns a disposer.
 */
export function attachOutlierEjection(router: Router): () => void {
  /** Ejections since the endpoint's last success, by endpoint id. */
  const streak = new Map<string, number>();
  return router.on('attempt:failure', (e: RouterEvents['attempt:failure']) => {
    const opts = router.config.outlierEjection;
    if (opts === false || !e.countsForBreaker) return;
    const stats = router.getStats(e.endpointId);
    if (!stats) return;
    if (stats.consecutiveErrors === 1) streak.delete(e.endpointId);
    const o = opts === true || opts === undefined ? OUTLIER_DEFAULTS : { ...OUTLIER_DEFAULTS, ...opts };
    if (stats.consecutiveErrors < o.consecutiveFailures) return;
    if (router.getHealth(e.endpointId)?.status !== 'healthy') return;
    for (const g of router.guards) if (g.ejects) return;
    let others = 0;
    for (const ep of router.endpoints) {
      if (ep.id !== e.endpointId && router.getHealth(ep.id)?.status === 'healthy') others++;
    }
    if (others === 0) return;
    const n = streak.get(e.endpointId) ?? 0;
    streak.set(e.endpointId, n + 1);
    const ms = Math.min(o.maxEjectionMs, o.ejectionMs * 2 ** n);
    router.markUnhealthy(
      e.endpointId,
      `outlier: ${stats.consecutiveErrors} consecutive failures, ejected for ${Math.round(ms / 1000)} s`,
      ms,
    );
  });
}
