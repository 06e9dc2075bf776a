// Routing one request: the router's execute loop with the request's pin, fallback chain and hedging, up to the
// answer chosen for the client.
import { isNoHealthyEndpointError, type Router } from '@lb/core';
import {
  BodyCollector,
  continuable,
  createsObject,
  FALLBACK_BODY_LIMIT,
  FallbackRun,
  fallbackCauseOf,
  fallbackCauseOfError,
  type HedgeRunOptions,
  type Hedger,
  hedgeSafe,
  isObjectRoute,
  pinnedEndpoint,
  pinnedUnavailable,
  StreamTrail,
} from '@lb/exchange';
import { UpstreamCall } from '../upstream.js';
import { ClientSignal, clientGone } from './client-signal.js';
import type { Exchange, HedgeLeg } from './exchange.js';
import { crashed, failed, settleAttempt } from './outcome.js';
import { readRequest } from './read.js';
import { replay, respond } from './respond.js';
import { spendIn } from './spend.js';

const perf = performance;

export const EXECUTE_OPTIONS = { inspect: (c: UpstreamCall) => c, discard: (c: UpstreamCall) => c.dump() };
/** Hedged runs: a call that answered after the other won is aborted and its attempt settled (as an abort: no failure). */
const HEDGE_OPTIONS: HedgeRunOptions<UpstreamCall> = {
  ...EXECUTE_OPTIONS,
  cancel: (c, reason) => {
    c.abort(reason);
    c.dump();
    settleAttempt(c, reason);
  },
};

type RouteRequest = Parameters<Router['execute']>[0];

/** Everything after the body: validation, routing, the attempts (the first one is sent before any await). */
export async function route(x: Exchange): Promise<void> {
  try {
    if (!readRequest(x)) return;
    const req = x.req;
    const res = x.res;
    const px = x.px;
    if (px.wallet !== undefined) {
      // Synchronous (no await, the upstream request leaves in this step) unless a budget lives in Redis.
      const ok = spendIn(x, px.wallet);
      if (ok === false || (ok !== true && !(await ok))) return;
    }
    const signal = new ClientSignal();
    x.signal = signal;
    if (res.destroyed) signal.abort(clientGone());
    // A scanned body with none of the parameters features are read from asks for none: no parse.
    if (px.features !== undefined && (x.json !== undefined || (x.lazyJson && x.featureParams)))
      x.features = px.features(x.operation, x.jsonOf()!);
    // Objects live where they were created: only object routes (and `x-lb-endpoint`) pay for the look-up.
    const pinHeader = req.headers['x-lb-endpoint'];
    if (pinHeader !== undefined || isObjectRoute(x.path)) {
      try {
        x.pin = await pinnedEndpoint(
          px.router,
          px.affinity,
          typeof pinHeader === 'string' ? pinHeader : undefined,
          x.path,
          x.hasJson() ? () => x.jsonOf() : undefined,
        );
      } catch (e) {
        return failed(x, e);
      }
      x.creates =
        px.affinity !== undefined &&
        createsObject(req.method ?? 'GET', x.path, x.hasJson() ? x.jsonOf() : undefined);
    }
    let call: UpstreamCall;
    px.trace?.continueFrom(x.requestId, req.headers, x.operation);
    let run: FallbackRun | undefined;
    for (;;) {
      x.routing = true;
      try {
        const routeReq = {
          model: x.fallbackTo ?? x.model,
          requestId: x.requestId,
          signal: signal as unknown as AbortSignal,
          operation: x.operation,
          client: x.client,
          features: x.features,
          tags: x.tags,
          estimatedTokens: px.estimate !== undefined && x.hasJson() ? px.estimate(x.jsonOf()!) : undefined,
          deadlineMs: run?.deadlineMs(),
          endpoint: x.pin?.endpointId,
        };
        if (px.streamContinue === true && x.stream && continuable(x.operation, x.jsonOf())) {
          x.trail = new StreamTrail();
          x.routeReq = routeReq;
        }
        const hedging = px.hedger === undefined ? undefined : hedgingOf(x, px.hedger, routeReq.model);
        if (hedging !== undefined) call = await runHedged(x, px.hedger!, hedging, routeReq);
        else call = await px.router.execute(routeReq, x.attempt, EXECUTE_OPTIONS);
      } catch (e) {
        x.routing = false;
        // Answered already: only a listener throwing in the router's bookkeeping gets here.
        if (x.early) return px.onError(e, x.requestId);
        const pin = x.pin;
        if (pin !== undefined && isNoHealthyEndpointError(e) && !x.signal?.aborted) {
          if (e.lastValue instanceof UpstreamCall) e.lastValue.dump();
          return failed(x, pinnedUnavailable(px.router, pin.endpointId, pin.objectId, e));
        }
        const cause = canFallBack(x) ? fallbackCauseOfError(e) : undefined;
        if (cause !== undefined && fallBack(x, (run ??= fallbackRun(x)), cause)) {
          if (isNoHealthyEndpointError(e) && e.lastValue instanceof UpstreamCall) e.lastValue.dump();
          continue;
        }
        return failed(x, e);
      }
      x.routing = false;
      if (x.early) return;
      // A client error some fallback chain could fix (context length, content policy, an unknown model): read its
      // (small) body for the cause. Only 4xx answers, only while a chain applies, only up to 64 KiB.
      const st = call.status;
      if (st >= 400 && st < 500 && !call.isStream && canFallBack(x)) {
        run ??= fallbackRun(x);
        const len = Number(call.headers['content-length']);
        if (run.wantsBody(st) && len >= 0 && len <= FALLBACK_BODY_LIMIT) {
          const col = new BodyCollector();
          x.call = call;
          call.attach(col);
          try {
            await col.done;
          } catch (e) {
            return failed(x, e);
          }
          const bytes = col.bytes();
          const cause = fallbackCauseOf(
            st,
            Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString(),
          );
          if (cause !== undefined && fallBack(x, run, cause)) continue;
          return replay(x, call, bytes);
        }
      }
      break;
    }
    respond(x, call);
  } catch (e) {
    crashed(x, e);
  }
}

/** A chain may apply: a model was named and fallbacks are configured or asked for, and the client is still there. */
function canFallBack(x: Exchange): boolean {
  return (
    (x.px.fallbacks !== undefined || x.requested !== undefined) &&
    x.model !== undefined &&
    x.pin === undefined &&
    x.signal?.aborted !== true &&
    !x.res.destroyed
  );
}

function fallbackRun(x: Exchange): FallbackRun {
  const deadline = x.px.router.config.deadlineMs ?? 120_000;
  return new FallbackRun(x.model!, x.px.fallbacks, x.requested, deadline - (perf.now() - x.t0));
}

/** Moves to the next model of the chain for `cause`; false when there is none. */
function fallBack(
  x: Exchange,
  run: FallbackRun,
  cause: 'context_window' | 'content_policy' | 'default',
): boolean {
  const to = run.next(cause, x.px.router, x.requestId);
  if (to === undefined) return false;
  x.fallbackTo = to;
  x.call = undefined;
  x.ctx = undefined;
  return true;
}

/** The request's hedging: its route has hedging on and it is safe to send twice (or the route opts in). */
function hedgingOf(x: Exchange, hedger: Hedger, model: string | undefined): ReturnType<Hedger['routeOf']> {
  const r = hedger.routeOf(model, true);
  if (r === undefined || r.unsafe) return r;
  const method = x.req.method ?? 'GET';
  // Only a body that may ask to store (`store`) is parsed, and only for a route with hedging on.
  const json = x.hasJson() ? x.jsonOf() : undefined;
  return hedgeSafe(x.operation, method, x.path, json) ? r : undefined;
}

/** Hedged: the attempts keep their own state; the winner's becomes the exchange's. */
async function runHedged(
  x: Exchange,
  hedger: Hedger,
  hedgeRoute: NonNullable<ReturnType<Hedger['routeOf']>>,
  routeReq: RouteRequest,
): Promise<UpstreamCall> {
  const legs = new Map<UpstreamCall, HedgeLeg>();
  x.legs = legs;
  const r = await hedger.run(hedgeRoute, routeReq, x.attempt, HEDGE_OPTIONS);
  const call = r.value;
  const leg = legs.get(call);
  x.legs = undefined;
  if (leg !== undefined) {
    x.ctx = leg.ctx;
    x.dreq = leg.dreq;
    x.translated = leg.translated;
    x.attempts = leg.ctx.attempt;
  }
  x.call = call;
  x.hedged = r.hedged;
  return call;
}
