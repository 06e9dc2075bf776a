/**
 * Stream probation and the end of a held attempt. An attempt whose stream outlives the attempt function calls
 * `hold()` (the in-flight hold: it stays counted in flight); when the stream ends, `endHold` counts it. A stream that
 * broke after its first byte puts the endpoint on stream probation (callers then buffer its streams until they end);
 * the first stream started after the break that ends cleanly takes it off.
 */
import { classify, isAbortError, type Verdict } from '../classify.js';
import { failureMessage } from './outcome.js';
import type { Runtime } from './route-table.js';
import { perf, type RouterState } from './router-state.js';

/** Sets `streamBrokeAt` (0: off stream probation); tells listeners when that puts `rt` on or takes it off. */
export function setProbation(
  s: RouterState,
  rt: Runtime,
  brokeAt: number,
  requestId: string | undefined,
): void {
  const was = rt.streamBrokeAt !== 0;
  rt.streamBrokeAt = brokeAt;
  const on = brokeAt !== 0;
  if (on !== was && s.bus.has('endpoint:probation'))
    s.bus.emit('endpoint:probation', { endpointId: rt.endpoint.id, endpoint: rt.endpoint, on, requestId });
}

/** A held attempt's stream ended (with `error` when it broke): counts it, moves the probation, emits `attempt:end`. */
export function endHold(
  s: RouterState,
  rt: Runtime,
  requestId: string,
  a0: number,
  error: unknown,
  signal: AbortSignal | undefined,
): void {
  const stats = rt.stats;
  stats.inFlight--;
  const ep = rt.endpoint;
  let verdict: Verdict | undefined;
  let message: string | undefined;
  if (error !== undefined) {
    verdict = classify({ error, callerAborted: signal?.aborted === true || isAbortError(error) });
    if (verdict.kind !== 'aborted') {
      setProbation(s, rt, perf.now(), requestId);
      message = failureMessage(ep, verdict, { error });
      stats.failures++;
      stats.consecutiveErrors++;
      stats.lastErrorAt = s.now();
      stats.lastError = message;
      stats.errorsByKind[verdict.kind] = (stats.errorsByKind[verdict.kind] ?? 0) + 1;
    }
  }
  // A stream that started after the last break and ended cleanly ends the probation.
  else if (rt.streamBrokeAt !== 0 && a0 >= rt.streamBrokeAt) setProbation(s, rt, 0, requestId);
  if (s.bus.has('attempt:end')) {
    const ok = verdict === undefined || verdict.kind === 'aborted';
    s.bus.emit('attempt:end', {
      requestId,
      endpointId: ep.id,
      endpoint: ep,
      ok,
      kind: verdict?.kind ?? 'success',
      durationMs: perf.now() - a0,
      message,
    });
  }
}
