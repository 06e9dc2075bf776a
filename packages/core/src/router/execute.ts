/**
 * The execute loop: runs a request's attempts with failover — choose, claim (guards' `acquire`, in-flight count),
 * call the attempt with its own timeout, classify the outcome, record it, then return, fail over, back off, wait
 * for a cooling endpoint, or give up (`request:exhausted`) — within the request's deadline and retry budget.
 */
import { classify, isAbortError, type OutcomeInput } from '../classify.js';
import type { Endpoint } from '../endpoint.js';
import {
  type AttemptCause,
  AttemptTimeoutError,
  DeadlineExceededError,
  LbError,
  NoHealthyEndpointError,
} from '../errors.js';
import type { Usage } from '../events.js';
import type { HeadersLike } from '../headers.js';
import type { RouteRequest } from '../request.js';
import { ROUTER_DEFAULTS } from './config.js';
import { failureMessage, observeLatency, recordFailure } from './outcome.js';
import { endHold } from './probation.js';
import { hasAll, routeFor } from './route-table.js';
import { perf, type RouterState } from './router-state.js';
import { admits, choose, tick, whyNone } from './select.js';

/**
 * A deadline this close counts as passed: an attempt timer bounded by the deadline may fire a millisecond or two
 * before the wall clock reads it (timers run on the loop's cached monotonic time), and no attempt fits in so little.
 */
const DEADLINE_SLACK_MS = 5;

/** What an attempt function gets: the endpoint to call and how. */
export interface AttemptContext {
  readonly endpoint: Endpoint;
  /** The model name to send upstream (after mapping), when the request named one. */
  readonly upstreamModel: string | undefined;
  readonly model: string | undefined;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /**
   * The endpoint is on stream probation: its last stream broke after the first byte, and no stream started since
   * has ended cleanly. A caller that can should buffer this attempt's stream until it ends (within limits of its
   * own), so that a repeat break fails over to another endpoint instead of reaching its client; the first stream
   * that ends cleanly ends the probation. lb-server and the openai adapter do (`streamProbationHoldMs`).
   */
  readonly streamProbation: boolean;
  readonly requestId: string;
  /** Aborted when the caller aborts or this attempt times out. Pass it to your HTTP call. */
  readonly signal: AbortSignal | undefined;
  /** Epoch ms when the whole request's deadline passes. */
  readonly deadline: number;
  /**
   * Keeps the attempt counted as in flight after the attempt function resolves (a stream still flowing). Call the
   * returned function exactly once when the stream ends, with the error if it broke.
   */
  hold(): (error?: unknown) => void;
  /** Reports token usage when it becomes known (emits `attempt:usage`). */
  reportUsage(usage: Usage, costUsd?: number): void;
}

/** Options of one `execute` call. */
export interface ExecuteOptions<T> {
  /** Reads status and headers from a resolved value. Default: `value.status` / `value.headers` when present. */
  inspect?: (value: T) => { status?: number; headers?: HeadersLike | null } | undefined;
  /** Discards a value that will not be returned (a failed response's body) before the next attempt. */
  discard?: (value: T) => void | Promise<void>;
}

/**
 * Where an attempt stands with its in-flight hold (`AttemptContext.hold`): `none` (settles with the attempt
 * function), `held` (a stream still flowing; `endHold` settles it), `dropped` (the attempt failed anyway).
 */
type HoldState = 'none' | 'held' | 'dropped';

let requestCounter = 0;
/**
 * Discards a failed value that will not be returned (returns `undefined`, the new `pending`). Not awaited: the choice
 * of the next endpoint and its claim (in-flight count, guard tokens) must happen in the same tick.
 */
function discardPending<T>(
  pending: { value: T } | undefined,
  options: ExecuteOptions<T> | undefined,
): undefined {
  if (pending && options?.discard) {
    try {
      const r = options.discard(pending.value);
      if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(() => {});
    } catch {
      // best effort
    }
  }
  return undefined;
}

/** The reason `@lb/exchange`'s `Hedger` cancels the attempt that lost the race with: not a failure. */
export const HEDGE_CANCELLED = 'ERR_LB_HEDGE_CANCELLED';

function isHedgeCancel(signal: AbortSignal | undefined): boolean {
  return (signal?.reason as { code?: unknown } | undefined)?.code === HEDGE_CANCELLED;
}

/** Emits `request:exhausted` and throws the request's final error. */
function exhausted(
  s: RouterState,
  requestId: string,
  causes: AttemptCause[] | undefined,
  model: string | undefined,
  err: LbError,
): never {
  if (s.bus.has('request:exhausted'))
    s.bus.emit('request:exhausted', { requestId, attempts: causes ?? [], error: err, model });
  throw err;
}

/** `Router.execute` (see there). */
export async function execute<T>(
  s: RouterState,
  req: RouteRequest,
  attempt: (ctx: AttemptContext) => Promise<T>,
  options?: ExecuteOptions<T>,
): Promise<T> {
  const requestId = req.requestId ?? `req_${(++requestCounter).toString(36)}`;
  const model = req.model;
  const signal = req.signal;
  // One reading of each clock serves the first attempt (the common case); later ones read again.
  const startedAt = tick(s);
  const t0 = perf.now();
  const deadlineMs = req.deadlineMs ?? s.deadlineMs;
  const deadline = startedAt + deadlineMs;
  const maxAttempts = s.failover ? (req.maxRetries ?? s.maxRetries) + 1 : 1;
  const cfg = s.config;
  const maxWaitMs = cfg.maxWaitMs ?? ROUTER_DEFAULTS.maxWaitMs;
  let tried: number[] | undefined;
  let causes: AttemptCause[] | undefined;
  let pending: { value: T } | undefined;
  let retries = 0;
  let waits = 0;
  const route = routeFor(s.pool, model, s);
  if (route.candidates.length === 0) {
    throw new LbError(`The model ${JSON.stringify(model)} is not served by any endpoint`, {
      status: 404,
      type: 'invalid_request_error',
      code: 'model_not_found',
    });
  }
  const tags = req.tags;
  if (tags !== undefined && tags.length > 0 && !route.candidates.some((c) => hasAll(c.tags, tags))) {
    // No endpoint could ever serve it, healthy or not: the request is wrong, not the pool.
    throw new LbError(
      `No endpoint${model === undefined ? '' : ` serving ${JSON.stringify(model)}`} carries all of the tags ${JSON.stringify(tags)}`,
      { status: 400, type: 'invalid_request_error', code: 'no_endpoint_with_tags' },
    );
  }
  const pin = req.endpoint;
  if (pin !== undefined) {
    // A pin names one endpoint this request may use: one serving its model and carrying its tags (a key's own).
    const pc = route.candidates.find((c) => c.endpoint.id === pin);
    if (pc === undefined || (tags !== undefined && tags.length > 0 && !hasAll(pc.tags, tags)))
      throw new LbError(
        !s.pool.byId.has(pin)
          ? `No endpoint has the id ${JSON.stringify(pin)}`
          : pc === undefined
            ? `The endpoint ${JSON.stringify(pin)} does not serve ${JSON.stringify(model)}`
            : `The endpoint ${JSON.stringify(pin)} is not one this request may use (tags ${JSON.stringify(tags)})`,
        { status: 400, type: 'invalid_request_error', code: 'unknown_endpoint' },
      );
  }
  let justWaited = false;

  for (let n = 1; n <= maxAttempts; ) {
    if (signal?.aborted) {
      pending = discardPending(pending, options);
      throw abortReason(signal);
    }
    const now = n === 1 && waits === 0 ? startedAt : tick(s);
    if (now >= deadline - DEADLINE_SLACK_MS) {
      pending = discardPending(pending, options);
      return exhausted(s, requestId, causes, model, new DeadlineExceededError(deadlineMs, causes ?? []));
    }
    const c = choose(s, route, req, tried, n, now);
    if (!c) {
      const { until, reason, rateLimited } = whyNone(s, route, req, now);
      const wait = until === undefined ? Infinity : until - now;
      if (wait <= Math.min(maxWaitMs, deadline - now) && waits < maxAttempts) {
        waits++;
        pending = discardPending(pending, options);
        await sleep(Math.max(1, wait), signal);
        justWaited = true;
        continue;
      }
      const err = new NoHealthyEndpointError({
        attempts: causes ?? [],
        model,
        retryAfterMs: until === undefined ? undefined : Math.max(0, until - now),
        lastValue: pending?.value,
        reason: causes?.length ? undefined : rateLimited ? 'rate-limit' : reason,
      });
      return exhausted(s, requestId, causes, model, err);
    }
    if (tried?.includes(c.rt.index) && !justWaited) {
      const b = cfg.backoff;
      const base = Math.min(b?.maxMs ?? 8000, (b?.initialMs ?? 250) * (b?.multiplier ?? 2) ** retries++);
      const delay = base * (1 - (b?.jitter ?? 0.5) * s.random());
      if (now + delay >= deadline) {
        pending = discardPending(pending, options);
        return exhausted(s, requestId, causes, model, new DeadlineExceededError(deadlineMs, causes ?? []));
      }
      pending = discardPending(pending, options);
      await sleep(delay, signal);
      // Keep the choice unless health or a guard changed meanwhile.
      if (!admits(s, c, req, tick(s))) {
        justWaited = true;
        continue;
      }
    }
    justWaited = false;
    const rt = c.rt;
    const ep = c.endpoint;
    pending = discardPending(pending, options);
    // Claim the endpoint synchronously with the choice, so concurrent requests see it taken.
    const guards = s.guards;
    for (let g = 0; g < guards.length; g++) guards[g].acquire?.(ep, req, now, requestId);
    if (s.bus.has('endpoint:selected')) {
      s.bus.emit('endpoint:selected', {
        requestId,
        endpointId: ep.id,
        endpoint: ep,
        strategy: route.strategy.name,
        candidates: route.candidates.length,
        attempt: n,
        model,
      });
    }
    const stats = rt.stats;
    stats.requests++;
    stats.inFlight++;
    stats.lastUsedAt = now;
    if (s.bus.has('attempt:start')) {
      s.bus.emit('attempt:start', {
        requestId,
        endpointId: ep.id,
        endpoint: ep,
        attempt: n,
        model,
        upstreamModel: c.upstreamModel,
      });
    }
    // An attempt's timeout is the smaller of its own and what is left of the request's deadline.
    const ownMs = ep.timeoutMs ?? cfg.timeoutMs;
    const timeoutMs = ownMs === undefined ? undefined : Math.min(ownMs, Math.max(1, deadline - now));
    let controller: AbortController | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let attemptSignal = signal;
    let onAbort: (() => void) | undefined;
    if (timeoutMs !== undefined) {
      const ctl = new AbortController();
      controller = ctl;
      attemptSignal = ctl.signal;
      timer = setTimeout(() => ctl.abort(new AttemptTimeoutError(ep.id, timeoutMs)), timeoutMs);
      if (signal) {
        onAbort = () => ctl.abort(abortReason(signal));
        signal.addEventListener('abort', onAbort, { once: true });
      }
    }
    let hold = 'none' as HoldState;
    const a0 = n === 1 && waits === 0 ? t0 : perf.now();
    const ctx: AttemptContext = {
      endpoint: ep,
      upstreamModel: c.upstreamModel,
      model,
      attempt: n,
      streamProbation: rt.streamBrokeAt !== 0,
      requestId,
      signal: attemptSignal,
      deadline,
      hold: () => {
        if (hold === 'none') hold = 'held';
        let done = false;
        return (error?: unknown) => {
          if (done) return;
          done = true;
          if (onAbort) signal!.removeEventListener('abort', onAbort);
          if (hold !== 'held') return;
          endHold(s, rt, requestId, a0, error, signal);
        };
      },
      reportUsage: (usage: Usage, costUsd?: number) => {
        if (s.bus.has('attempt:usage'))
          s.bus.emit('attempt:usage', {
            requestId,
            endpointId: ep.id,
            endpoint: ep,
            usage,
            model,
            costUsd,
          });
      },
    };
    let value: T | undefined;
    let input: OutcomeInput;
    try {
      value = await attempt(ctx);
      const info = options?.inspect ? options.inspect(value) : defaultInspect(value);
      input = info ? { status: info.status, headers: info.headers } : {};
    } catch (error) {
      input = {
        error,
        callerAborted: signal?.aborted === true,
        timedOut: controller?.signal.aborted === true && !signal?.aborted,
      };
      if (!input.callerAborted && !input.timedOut && isAbortError(error) && !signal) input.error = error;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      // A held stream keeps the caller's abort linked to the attempt's signal until the stream ends.
      if (onAbort && hold !== 'held') signal!.removeEventListener('abort', onAbort);
    }
    const latencyMs = perf.now() - a0;
    const verdict = classify(input);
    if (verdict.kind === 'success' || verdict.kind === 'client') {
      stats.successes++;
      stats.consecutiveErrors = 0;
      stats.lastStatus = verdict.status ?? input.status;
      observeLatency(s, stats, latencyMs);
      if (hold === 'none') stats.inFlight--;
      if (rt.rateLimitStreak) rt.rateLimitStreak = 0;
      if (s.bus.has('attempt:success')) {
        s.bus.emit('attempt:success', {
          requestId,
          endpointId: ep.id,
          endpoint: ep,
          attempt: n,
          status: input.status,
          latencyMs,
          headers: input.headers ?? undefined,
          model,
          held: hold === 'held',
        });
      }
      if (s.bus.has('request:done')) {
        s.bus.emit('request:done', {
          requestId,
          endpointId: ep.id,
          attempts: n,
          latencyMs: perf.now() - t0,
          status: input.status,
          model,
        });
      }
      if (input.error !== undefined) throw input.error;
      return value as T;
    }
    // A failure.
    stats.inFlight--;
    hold = 'dropped';
    const message = failureMessage(ep, verdict, input);
    // A hedge's loser, cancelled because the other attempt answered first, is no failure of its endpoint.
    if (verdict.kind !== 'aborted' || !isHedgeCancel(signal)) recordFailure(s, rt, verdict, message, now);
    if (s.bus.has('attempt:failure')) {
      s.bus.emit('attempt:failure', {
        requestId,
        endpointId: ep.id,
        endpoint: ep,
        attempt: n,
        kind: verdict.kind,
        status: verdict.status,
        retryAfterMs: verdict.retryAfterMs,
        latencyMs,
        countsForBreaker: verdict.countsForBreaker,
        failover: verdict.failover,
        message,
        headers: input.headers ?? undefined,
        model,
      });
    }
    if (verdict.kind === 'aborted') {
      if (input.error === undefined && value !== undefined) discardPending({ value }, options);
      throw signal ? abortReason(signal) : input.error;
    }
    (causes ??= []).push({
      endpointId: ep.id,
      attempt: n,
      kind: verdict.kind,
      status: verdict.status,
      retryAfterMs: verdict.retryAfterMs,
      message,
    });
    (tried ??= []).push(rt.index);
    if (input.error === undefined) pending = { value: value as T };
    n++;
  }
  const now = s.now();
  // The last attempt ran out of time because the deadline bounded it: the request's deadline is what passed.
  if (causes?.at(-1)?.kind === 'timeout' && now >= deadline - DEADLINE_SLACK_MS) {
    pending = discardPending(pending, options);
    return exhausted(s, requestId, causes, model, new DeadlineExceededError(deadlineMs, causes));
  }
  const { until } = whyNone(s, route, req, now);
  return exhausted(
    s,
    requestId,
    causes,
    model,
    new NoHealthyEndpointError({
      attempts: causes ?? [],
      model,
      retryAfterMs: until === undefined ? undefined : Math.max(0, until - now),
      lastValue: pending?.value,
    }),
  );
}

function defaultInspect(value: unknown): { status?: number; headers?: HeadersLike | null } | undefined {
  if (value !== null && typeof value === 'object') {
    const v = value as { status?: unknown; statusCode?: unknown; headers?: unknown };
    const status =
      typeof v.status === 'number' ? v.status : typeof v.statusCode === 'number' ? v.statusCode : undefined;
    if (status !== undefined) return { status, headers: v.headers as HeadersLike | undefined };
  }
  return undefined;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(t);
      reject(abortReason(signal!));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
