// How an exchange ends: the errors it answers, its attempt settled with the router, its usage and cost settled,
// and the record it leaves for the request log and metrics.
import { errorFromStatus, isLbError, isNoHealthyEndpointError } from '@lb/core';
import { StreamOpenError } from '@lb/exchange';
import { asLbError, sendError, sendStatus } from '../http.js';
import { UpstreamCall } from '../upstream.js';
import type { Exchange } from './exchange.js';
import { settleSpend } from './spend.js';

const perf = performance;

export function upstreamErrorEvent(): Error {
  return new Error('upstream sent an error event mid-stream');
}

/**
 * Settles an attempt with the router once (`Attempt.release`, set while the router counts it in flight): its outcome
 * (`err`: a failure or an abort) counts for the endpoint (stream probation, in-flight count).
 */
export function settleAttempt(call: UpstreamCall, err: unknown): void {
  const settle = call.release;
  if (settle) {
    call.release = undefined;
    settle(err);
  }
}

/** An unexpected error: logged, answered with a 500 (or the connection cut when the headers went). */
export function crashed(x: Exchange, err: unknown): void {
  const res = x.res;
  x.px.onError(err, x.requestId);
  if (!res.headersSent) sendStatus(res, 500, 'Internal gateway error', undefined, x.rateHeaders());
  else res.destroy();
}

/** Routing failed: every endpoint refused or failed, the client left, or nothing could serve the request. */
export function failed(x: Exchange, e: unknown): void {
  const res = x.res;
  if (isNoHealthyEndpointError(e)) {
    const last = e.lastValue;
    if (last instanceof UpstreamCall) last.dump();
  }
  if (x.signal?.aborted) {
    x.status = 499;
    if (!res.destroyed) res.destroy();
    finish(x, undefined, 'client_closed');
    return;
  }
  if (e instanceof StreamOpenError) {
    // A client error reported inside the stream's first event: answer it as a plain error.
    const err = errorFromStatus(e.status, x.px.redactor.text(e.message));
    x.status = err.status;
    sendError(res, err, x.rateHeaders());
    finish(x, undefined, err.type);
    return;
  }
  if (x.attempts === 0 && x.px.explain) {
    // Nothing was tried: say why no endpoint can ever serve this (unknown model, unsupported operation or
    // parameter).
    const why = x.px.explain(x.operation, x.model, x.features);
    if (why) {
      x.status = why.status;
      sendError(res, why, x.rateHeaders());
      finish(x, undefined, why.type);
      return;
    }
  }
  const err = asLbError(e);
  if (!isLbError(e)) x.px.onError(e, x.requestId);
  x.status = err.status;
  sendError(
    res,
    err,
    x.rateHeaders(
      x.attempts > 0 && x.px.settings.responseHeaders
        ? { 'x-lb-request-id': x.requestId, 'x-lb-attempts': x.attempts }
        : { 'x-lb-request-id': x.requestId },
    ),
  );
  finish(x, undefined, err.code);
}

/** Refuses the request with the gateway's own error (`code` is its machine-readable reason). */
export function failWith(x: Exchange, status: number, message: string, code: string): void {
  const err = errorFromStatus(status, message);
  (err as { code: string }).code = code;
  x.status = status;
  sendError(x.res, err, x.rateHeaders());
  finish(x, undefined, err.type);
}

/** The exchange is over (once): its attempt, spend and record are settled. */
export function finish(x: Exchange, err: unknown, errorType?: string): void {
  if (x.finished) return;
  x.finished = true;
  if (x.call?.isStream) x.px.streams.delete(x);
  // Answered early and done before the router accounted for the attempt (its continuation is already queued):
  // the attempt's settlement and the record follow it, so that the router's events keep their order.
  if (x.routing) queueMicrotask(() => settleEnd(x, err, errorType));
  else settleEnd(x, err, errorType);
}

function settleEnd(x: Exchange, err: unknown, errorType: string | undefined): void {
  const call = x.call;
  if (call !== undefined) settleAttempt(call, err);
  const usage = x.translated?.usage ?? x.usage ?? (x.status < 300 ? call?.usage() : undefined);
  const wallet = x.px.wallet;
  const costUsd = wallet === undefined ? undefined : settleSpend(x, wallet, usage);
  if (usage && x.ctx) x.ctx.reportUsage(usage, costUsd);
  const up = call?.headers;
  const upstreamId = up === undefined ? undefined : headerText(up['x-request-id'] ?? up['request-id']);
  const clientId = x.req.headers['x-request-id'];
  x.px.record({
    requestId: x.requestId,
    client: x.client,
    method: x.req.method ?? 'GET',
    path: x.path,
    model: x.model,
    stream: x.stream,
    status: x.status,
    latencyMs: perf.now() - x.t0,
    ttfbMs: x.ttfb,
    endpointId: x.ctx?.endpoint.id,
    attempts: x.attempts,
    errorType: errorType ?? (err ? 'upstream_stream_error' : x.status >= 400 ? 'upstream_error' : undefined),
    usage,
    costUsd,
    key: x.who?.key.name,
    upstreamRequestId: upstreamId === undefined ? undefined : x.px.redactor.text(upstreamId),
    clientRequestId: clientId === undefined ? undefined : headerText(clientId),
  });
}

/** A header's value for a record: the first one, at most 256 characters. */
function headerText(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s.length <= 256 ? s : s.slice(0, 256);
}
