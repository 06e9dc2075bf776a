// The call's routing: one execution on the current model — hedged when the route hedges and the call is safe to
// send twice, continued on another endpoint when a chat stream breaks after content, else the router's own — then
// the fallback chain (model after model within the deadline), a pinned object's endpoint, and the object affinity
// an answer creating or deleting an object updates.
import { type AttemptContext, isLbError, isNoHealthyEndpointError } from '@lb/core';
import {
  type AffinityStore,
  continuable,
  continuationBody,
  continuationRequest,
  createdIdIn,
  FALLBACK_BODY_LIMIT,
  FALLBACK_HEADER,
  type FallbackCause,
  FallbackRun,
  fallbackCauseOf,
  fallbackCauseOfError,
  hedgeSafe,
  isObjectRoute,
  objectIdsIn,
  pinnedUnavailable,
  prefixCut,
  rememberObject,
  StreamTrail,
} from '@lb/exchange';
import { attemptOn } from './attempt.js';
import type { Call } from './call.js';
import type { FetchClient } from './fetch-options.js';
import { continuing } from './internal/continue.js';
import { discard, errorResponse, markHedged, synthetic, withHeaders } from './responses.js';

let fallbackSeq = 0;

/** Routes `call` to its answer: the router's attempts, fallbacks, hedging and continuation; never rejects with an lb error. */
export async function routeCall(c: FetchClient, call: Call): Promise<Response> {
  const { router } = c;
  const { req, routeReq, model, pin, operation } = call;
  const attempt = (ctx: AttemptContext) => attemptOn(c, call, ctx);
  if (model === undefined || (c.chains === undefined && call.requested === undefined) || pin !== undefined) {
    let res: Response;
    try {
      res = await once(c, call, attempt);
    } catch (error) {
      if (!isLbError(error)) throw error;
      if (pin !== undefined && isNoHealthyEndpointError(error)) {
        if (error.lastValue instanceof Response) discard(error.lastValue);
        return synthetic(pinnedUnavailable(router, pin.endpointId, pin.objectId, error), 0);
      }
      return errorResponse(router, error, operation, model, routeReq.features, c.tagged);
    }
    return call.afterwards === undefined ? res : remember(call.afterwards, res, call);
  }
  // With a chain: the same, model after model (never one twice), all within the request's deadline.
  let run: FallbackRun | undefined;
  const startedAt = Date.now();
  const newRun = () =>
    new FallbackRun(
      model,
      c.chains,
      call.requested,
      (routeReq.deadlineMs ?? router.config.deadlineMs ?? 120_000) - (Date.now() - startedAt),
    );
  const requestId = (routeReq.requestId ??= `req_f${(++fallbackSeq).toString(36)}`);
  const fallBack = (cause: FallbackCause | undefined): boolean => {
    if (cause === undefined || req.signal?.aborted) return false;
    run ??= newRun();
    const to = run.next(cause, router, requestId);
    if (to === undefined) return false;
    routeReq.model = to;
    routeReq.deadlineMs = run.deadlineMs();
    return true;
  };
  for (;;) {
    let res: Response;
    try {
      res = await once(c, call, attempt);
    } catch (error) {
      if (!isLbError(error)) throw error;
      if (fallBack(fallbackCauseOfError(error))) {
        if (isNoHealthyEndpointError(error) && error.lastValue instanceof Response) discard(error.lastValue);
        continue;
      }
      return errorResponse(router, error, operation, routeReq.model, routeReq.features, c.tagged);
    }
    const st = res.status;
    if (st >= 400 && st < 500 && (run ??= newRun()).wantsBody(st)) {
      const len = Number(res.headers.get('content-length') ?? 0);
      if (len <= FALLBACK_BODY_LIMIT) {
        const text = await res.text();
        if (fallBack(fallbackCauseOf(st, text))) continue;
        res = new Response(text, { status: st, statusText: res.statusText, headers: res.headers });
      }
    }
    if (run?.taken) {
      const headers = new Headers(res.headers);
      headers.set(FALLBACK_HEADER, run.model);
      res = withHeaders(res, headers);
    }
    return call.afterwards === undefined ? res : remember(call.afterwards, res, call);
  }
}

/**
 * One execution of the call on the current model: hedged when the route hedges and the call is safe to send twice
 * (`hedge.ts`), continued on another endpoint when a chat stream breaks after content, else the router's.
 */
async function once(
  c: FetchClient,
  call: Call,
  attempt: (ctx: AttemptContext) => Promise<Response>,
): Promise<Response> {
  const { router, hedger } = c;
  const { routeReq, json } = call;
  const hedging =
    hedger === undefined
      ? undefined
      : hedger.routeOf(routeReq.model, hedgeSafe(call.operation, call.req.method, call.path, json));
  if (hedging !== undefined) {
    const r = await hedger!.run(hedging, routeReq, attempt, { discard });
    return r.hedged ? markHedged(r.value) : r.value;
  }
  if (c.streamContinue && call.stream && continuable(call.operation, json)) {
    const trail = new StreamTrail();
    const first = await router.execute(routeReq, attempt, { discard });
    if (!first.ok || first.body === null) return first;
    return continuing(
      first,
      trail,
      () => call.streaming,
      async (from) => {
        const prefix = trail.text;
        call.bodyFor = (provider) => {
          trail.skip = prefixCut(prefix, provider);
          return continuationBody(json!, prefix, provider);
        };
        const res = await router.execute(continuationRequest(router, routeReq, from), attempt, {
          discard,
        });
        if (res.ok)
          router.publishContinue({
            requestId: routeReq.requestId ?? '',
            model: routeReq.model,
            fromEndpointId: from,
            endpointId: call.streaming,
            prefixChars: prefix.length,
          });
        return res;
      },
    );
  }
  return router.execute(routeReq, attempt, { discard });
}

/**
 * After a 2xx on an object route: remembers the endpoint of the object the answer created (its id read from a
 * clone's first bytes), or forgets the one a DELETE removed.
 */
async function remember(store: AffinityStore, res: Response, call: Call): Promise<Response> {
  const endpointId = call.answeredBy;
  if (!res.ok || endpointId === undefined) return res;
  const { method } = call.req;
  const path = call.path;
  if (call.creates && res.body !== null) {
    const found = createdIdOf(res.clone()).then((id) =>
      id === undefined ? undefined : rememberObject(store, id, endpointId),
    );
    // A JSON answer is small and whole: remembered before the caller has it. A stream (a Responses stream with
    // `store`) carries the id in its first event: read from the clone alongside, never holding the caller's stream.
    if ((res.headers.get('content-type') ?? '').includes('event-stream')) found.catch(() => {});
    else await found;
  } else if (method === 'DELETE' && isObjectRoute(path)) {
    const id = objectIdsIn(path, undefined).at(-1);
    if (id !== undefined && path.split('?')[0].endsWith(id)) await store.delete(id);
  }
  return res;
}

/** The created object's id from the first 8 KiB of a (cloned) answer; the clone is cancelled after. */
async function createdIdOf(res: Response): Promise<string | undefined> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  try {
    while (text.length < 8192) {
      const r = await reader.read();
      if (r.done) break;
      text += dec.decode(r.value, { stream: true });
      const id = createdIdIn(text);
      if (id !== undefined) return id;
    }
    return createdIdIn(text);
  } finally {
    reader.cancel().catch(() => {});
  }
}
