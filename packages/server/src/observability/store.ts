import type { RouterEvents } from '@lb/core';
import type { StoreHealth } from '@lb/ratelimit';
import type { Logger } from 'pino';
import { CounterFamily, HistogramFamily } from './families.js';

/**
 * The shared store's metrics, read from its status at each scrape: `lb_store_up`, `lb_store_errors_total`,
 * `lb_store_latency_seconds`, `lb_store_degraded_share` and `lb_store_replicas`. No labels (one store per server).
 */
export function storeMetrics(store: StoreHealth): {
  families: readonly object[];
  refresh(): void;
} {
  const up = new CounterFamily(
    'lb_store_up',
    'Whether the shared store (Redis) answers (1) or is degraded (0).',
    [],
    'gauge',
  );
  const errors = new CounterFamily(
    'lb_store_errors_total',
    'Shared store commands that failed or timed out.',
    [],
  );
  const share = new CounterFamily(
    'lb_store_degraded_share',
    'Part of each shared budget this replica uses while the store is degraded (1 / replicas).',
    [],
    'gauge',
  );
  const replicas = new CounterFamily(
    'lb_store_replicas',
    'Replicas sharing the budgets (heartbeats in Redis; the last count while it is away).',
    [],
    'gauge',
  );
  const first = store.status();
  const latency = new HistogramFamily(
    'lb_store_latency_seconds',
    'Round trip of shared store commands.',
    [],
    first.latency.bounds,
  );
  const cells = [up.cell(), errors.cell(), share.cell(), replicas.cell()] as const;
  const lat = latency.cell();
  return {
    families: [up, errors, latency, share, replicas],
    refresh() {
      const s = store.status();
      cells[0].value = s.state === 'up' ? 1 : 0;
      cells[1].value = s.errors;
      cells[2].value = s.share;
      cells[3].value = s.replicas;
      const n = Math.min(lat.counts.length, s.latency.counts.length);
      for (let i = 0; i < n; i++) lat.counts[i] = s.latency.counts[i];
      lat.sum = s.latency.sum;
      lat.count = s.latency.count;
    },
  };
}

/**
 * Logs each change of the shared store's state (`store:state` on the router's bus, published by the rate limiter)
 * once: degraded at warn, back up at info.
 */
export function logStoreChange(logger: Logger): (c: RouterEvents['store:state']) => void {
  return (c) => {
    const fields = { from: c.from, to: c.to, reason: c.reason, replicas: c.replicas, share: c.share };
    if (c.to === 'degraded')
      logger.warn(
        fields,
        `shared rate-limit store (Redis) unavailable: degraded, this replica keeps to its share (1/${c.replicas}) of every budget until it answers again`,
      );
    else logger.info(fields, 'shared rate-limit store (Redis) answers again: budgets shared again');
  };
}

/**
 * Logs each change of a guard's own state once: a circuit's (opened, opened on a peer's word, half-open, closed) at
 * info, a rate-limit cooldown's start at debug (every upstream 429 is logged already).
 */
export function logGuardState(logger: Logger): (e: RouterEvents['guard:state']) => void {
  return (e) => {
    const fields = {
      guard: e.guard,
      endpointId: e.endpointId,
      from: e.from,
      to: e.to,
      reason: e.reason,
      until: e.until === undefined ? undefined : new Date(e.until).toISOString(),
    };
    if (e.kind === 'circuit') logger.info(fields, `${e.guard} ${e.to}`);
    else logger.debug(fields, `${e.guard} ${e.to}`);
  };
}
