// The bus listeners: what the router's events (and the guards' typed state on the same bus) do to the metrics,
// the `/stats` totals and the logs. Failovers are counted when their next attempt starts.
import type { Router, RouterEvents } from '@lb/core';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';
import type { Totals } from './stats-view.js';
import { logGuardState, logStoreChange } from './store.js';

/** Requests whose failure awaits the next attempt (to count the failover); bounded against aborted requests. */
const MAX_PENDING_FAILOVERS = 10_000;
/** A failover still waiting for its next attempt after this long belongs to a request that was given up on. */
const STALE_FAILOVER_MS = 10 * 60_000;

/**
 * Subscribes the server's metrics, totals and logs to the router's bus; `routing` (the `DEBUG=lb:routing` logger)
 * logs each routing decision. Returns the disposer.
 */
export function listenToBus(
  router: Router,
  metrics: Metrics,
  totals: Totals,
  logger: Logger,
  routing: Logger | undefined,
): () => void {
  const offs: Array<() => void> = [];
  const on = <E extends keyof RouterEvents>(e: E, fn: (p: RouterEvents[E]) => void) =>
    offs.push(router.on(e, fn));
  /**
   * Failovers awaiting their next attempt (counted then, with the endpoint and reason they left). `attempt:start` and
   * `request:done` are listened to only while one is waiting (`request:done` to forget those whose request ended
   * without another attempt): the router builds and emits those events for no one the rest of the time, so a request
   * pays nothing for them before its upstream request leaves. Attempts are counted as they end (each ends once).
   */
  const pending = new Map<string, { from: string; reason: string; at: number }>();
  let offWaiting: (() => void) | undefined;
  const forget = (requestId: string) => {
    if (pending.delete(requestId) && pending.size === 0 && offWaiting) {
      offWaiting();
      offWaiting = undefined;
    }
  };
  const onDone = (e: RouterEvents['request:done']) => {
    // A request the caller gave up on between two attempts ends with no event: its entry goes after 10 minutes.
    const oldest = pending.entries().next().value;
    if (oldest !== undefined && Date.now() - oldest[1].at > STALE_FAILOVER_MS) forget(oldest[0]);
    forget(e.requestId);
  };
  /** The failover `e` continues, counted now that its next attempt starts. */
  const onNextAttempt = (e: RouterEvents['attempt:start']) => {
    if (e.attempt === 1) return;
    const p = pending.get(e.requestId);
    if (p === undefined) return;
    forget(e.requestId);
    metrics.failovers.cell(p.from, p.reason).value++;
    totals.failovers++;
  };
  const remember = (requestId: string, from: string, reason: string) => {
    if (pending.size >= MAX_PENDING_FAILOVERS) pending.delete(pending.keys().next().value as string);
    pending.set(requestId, { from, reason, at: Date.now() });
    if (offWaiting === undefined) {
      const offStart = router.on('attempt:start', onNextAttempt);
      const offEnd = router.on('request:done', onDone);
      offWaiting = () => {
        offStart();
        offEnd();
      };
    }
  };

  if (routing) {
    on('endpoint:selected', (e) =>
      routing.debug(
        {
          requestId: e.requestId,
          endpointId: e.endpointId,
          strategy: e.strategy,
          candidates: e.candidates,
          attempt: e.attempt,
          model: e.model,
        },
        'endpoint selected',
      ),
    );
    on('attempt:start', (e) =>
      routing.debug(
        {
          requestId: e.requestId,
          endpointId: e.endpointId,
          attempt: e.attempt,
          model: e.model,
          upstreamModel: e.upstreamModel,
        },
        'attempt start',
      ),
    );
  }
  on('attempt:success', (e) => {
    totals.attempts++;
    const c = metrics.epCells(e.endpointId);
    metrics.attemptCell(c, e.endpointId, e.status !== undefined && e.status >= 400 ? 'client' : 'success')
      .value++;
    metrics.upstreamLatency.observe(metrics.latencyCell(c, e.endpointId, e.model), e.latencyMs / 1000);
    routing?.debug(
      {
        requestId: e.requestId,
        endpointId: e.endpointId,
        attempt: e.attempt,
        status: e.status,
        latencyMs: e.latencyMs,
      },
      'attempt success',
    );
  });
  on('attempt:failure', (e) => {
    totals.attempts++;
    const c = metrics.epCells(e.endpointId);
    metrics.attemptCell(c, e.endpointId, e.kind).value++;
    metrics.upstreamLatency.observe(metrics.latencyCell(c, e.endpointId, e.model), e.latencyMs / 1000);
    if (e.kind !== 'aborted' && e.kind !== 'client') metrics.countError(e.kind);
    if (e.failover && e.kind !== 'aborted') {
      remember(e.requestId, e.endpointId, e.kind);
    } else if (pending.size > 0) forget(e.requestId);
    const fields = {
      requestId: e.requestId,
      endpointId: e.endpointId,
      attempt: e.attempt,
      kind: e.kind,
      status: e.status,
      retryAfterMs: e.retryAfterMs,
      latencyMs: Math.round(e.latencyMs),
      failover: e.failover,
      reason: e.message,
    };
    if (e.kind === 'aborted' || e.kind === 'client')
      (routing ?? logger).debug(fields, 'upstream attempt failed');
    else logger.warn(fields, 'upstream attempt failed');
  });
  on('attempt:end', (e) => {
    if (e.ok) {
      routing?.debug(
        { requestId: e.requestId, endpointId: e.endpointId, durationMs: e.durationMs },
        'stream end',
      );
      return;
    }
    if (e.kind === 'aborted') return;
    metrics.countError('stream');
    logger.warn(
      {
        requestId: e.requestId,
        endpointId: e.endpointId,
        kind: e.kind,
        durationMs: Math.round(e.durationMs),
        reason: e.message,
      },
      'upstream stream broke',
    );
  });
  on('attempt:usage', (e) => {
    const c = metrics.epCells(e.endpointId);
    const m = metrics.modelLabel(e.model);
    let cells = c.tokens.get(m);
    if (!cells) {
      cells = [
        metrics.tokensTotal.cell(e.endpointId, m, 'prompt'),
        metrics.tokensTotal.cell(e.endpointId, m, 'completion'),
        metrics.tokensTotal.cell(e.endpointId, m, 'total'),
      ];
      c.tokens.set(m, cells);
    }
    const u = e.usage;
    const p = num(u.prompt_tokens);
    const k = num(u.completion_tokens);
    const t = num(u.total_tokens) || p + k;
    cells[0].value += p;
    cells[1].value += k;
    cells[2].value += t;
    c.prompt += p;
    c.completion += k;
    c.total += t;
    const mc = metrics.modelCells(m);
    mc.prompt += p;
    mc.completion += k;
    mc.total += t;
  });
  on('endpoint:state', (e) => {
    metrics.stateChanges.cell(e.endpointId, e.to).value++;
    const fields = {
      endpointId: e.endpointId,
      from: e.from,
      to: e.to,
      reason: e.reason,
      until: e.until === undefined ? undefined : new Date(e.until).toISOString(),
    };
    if (e.to === 'healthy') logger.info(fields, 'endpoint recovered');
    else logger.warn(fields, 'endpoint state changed');
  });
  on('endpoint:probation', (e) => {
    const fields = { endpointId: e.endpointId, requestId: e.requestId };
    if (e.on) logger.warn(fields, 'endpoint on stream probation: a stream broke after its first byte');
    else logger.info(fields, 'endpoint off stream probation');
  });
  on('fallback', (e) => {
    totals.fallbacks++;
    totals.fallbacksByCause[e.cause]++;
    metrics.fallbacksTotal.cell(metrics.modelLabel(e.from), metrics.modelLabel(e.to), e.cause).value++;
    logger.info({ requestId: e.requestId, from: e.from, to: e.to, cause: e.cause }, 'model fallback');
  });
  on('request:exhausted', (e) => {
    if (pending.size > 0) forget(e.requestId);
    metrics.exhaustedTotal.cell(metrics.modelLabel(e.model)).value++;
    logger.warn(
      {
        requestId: e.requestId,
        model: e.model,
        status: e.error.status,
        attempts: e.attempts.map((a) => ({ endpointId: a.endpointId, kind: a.kind, status: a.status })),
      },
      'request failed on every endpoint',
    );
  });
  on('hedge', (e) => {
    if (e.phase === 'started') metrics.hedgeStartedCell.value++;
    else if (e.phase === 'won') metrics.hedgeWonCell.value++;
  });
  on('stream:continued', () => {
    metrics.continuedCell.value++;
  });
  on('config:reloaded', (e) => {
    metrics.reloaded(e.removed);
    logger.info({ added: e.added, removed: e.removed, changed: e.changed }, 'configuration reloaded');
  });
  on('guard:changed', (e) => logger.debug({ guard: e.name, attached: e.attached }, 'guard changed'));
  // Guards, health probes and the shared store publish their typed state on the router's bus: one bus to read.
  on('guard:state', logGuardState(logger));
  on('store:state', logStoreChange(logger));
  on('probe:result', (e) => {
    if (!e.ok)
      logger.debug(
        { endpointId: e.endpointId, kind: e.kind, status: e.status, action: e.action, reason: e.error },
        'health probe failed',
      );
  });

  return () => {
    for (const off of offs) off();
    offs.length = 0;
    offWaiting?.();
    offWaiting = undefined;
    pending.clear();
  };
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0;
}
