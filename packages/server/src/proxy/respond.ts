// Writing the response to the client: the chosen answer's headers (the gateway's own tags, redaction), its body as
// the upstream sends it (streams event by event, with back-pressure), and how a broken body ends.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import {
  CreatedIdTap,
  dropAskedUsage,
  FALLBACK_HEADER,
  HEDGED_HEADER,
  objectIdsIn,
  rememberObject,
  type Sink,
  sseError,
  tagResponse,
} from '@lb/exchange';
import { usageFromBytes } from '@lb/providers/internal';
import { sendStatus } from '../http.js';
import type { UpstreamCall } from '../upstream.js';
import { clientGone } from './client-signal.js';
import { continueStream } from './continue.js';
import type { Exchange } from './exchange.js';
import { finish, upstreamErrorEvent } from './outcome.js';
import { costHeader } from './spend.js';

const perf = performance;

/** Answers the client with `call` (the attempt the router chose): headers now, the body as it flows. */
export function respond(x: Exchange, call: UpstreamCall): void {
  const res = x.res;
  x.call = call;
  x.status = call.status;
  if (res.destroyed) {
    call.abort(clientGone());
    return;
  }
  // Secrets: headers always, bodies of non-2xx answers (redact.ts).
  const rd = x.px.redactor;
  const ok = call.status >= 200 && call.status < 300;
  let sink: Sink = ok ? x : rd.sink(x);
  const store = x.px.affinity;
  if (ok && store !== undefined && x.ctx !== undefined) {
    const ep = x.ctx.endpoint.id;
    if (x.creates) sink = new CreatedIdTap(sink, (id) => void rememberObject(store, id, ep));
    else if (x.req.method === 'DELETE') {
      // The object the path ends with is gone (not its parent: DELETE /threads/{t}/messages/{m} keeps the thread).
      const id = objectIdsIn(x.path, undefined).at(-1);
      if (id !== undefined && x.path.split('?')[0].endsWith(id)) void store.delete(id);
    }
  }
  if (x.translated) {
    // The dialect rewrites whole bodies: collect, then translate in `end`.
    call.attach(sink);
    return;
  }
  if (x.px.wallet !== undefined && !call.isStream && sink === x && x.px.settings.responseHeaders) {
    // `x-lb-cost` goes in the headers: the body (usage at its end) is collected whole, then sent in one write.
    x.costed = [];
    call.attach(sink);
    return;
  }
  res.writeHead(call.status, tagged(x, rd.headers(call.headers, !call.isStream, call.status)));
  call.attach(sink);
  if (!call.isStream) return;
  x.px.streams.add(x);
  if (res.writableEnded) return;
  // A stream's headers leave with its first events (the block the gate let through, written by `attach`) in one
  // write, and at once: Node holds a chunked response's writes until the end of the step, and the rest of this step
  // (the engine finishing the upstream's read and, when the whole stream came in that read, its end and usage) is no
  // reason for the client's first token to wait. Headers alone when no event came yet.
  if (x.wrote) res.uncork();
  else res.flushHeaders();
}

/** Answers with a client error whose body was read whole (to look for a fallback cause). */
export function replay(x: Exchange, call: UpstreamCall, body: Uint8Array): void {
  const res = x.res;
  x.call = call;
  x.status = call.status;
  if (res.destroyed) {
    finish(x, undefined, 'client_closed');
    return;
  }
  const rd = x.px.redactor;
  const sink = rd.sink(x);
  if (!x.translated) res.writeHead(call.status, tagged(x, rd.headers(call.headers, true, call.status)));
  if (body.length) sink.data(body);
  sink.end();
}

/**
 * Adds the gateway's own response headers: who answered, after how many attempts (`responseHeaders`), and the
 * client limit's `x-ratelimit-*-requests` (over the upstream's, which describe the endpoint's key, not the client's).
 */
function tagged(x: Exchange, h: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (x.px.settings.responseHeaders) tagResponse(h, x.ctx!);
  x.rateHeaders(h);
  if (x.fallbackTo !== undefined) h[FALLBACK_HEADER] = x.fallbackTo;
  if (x.hedged) h[HEDGED_HEADER] = '1';
  return h;
}

/** `Sink.data`: a chunk of the upstream body (a stream's whole event). */
export function sinkData(x: Exchange, chunk: Uint8Array): boolean {
  if (x.ttfb === undefined) x.ttfb = perf.now() - x.t0;
  if (x.translated) {
    x.translated.chunks.push(chunk);
    return true;
  }
  if (x.costed !== undefined) {
    x.costed.push(chunk);
    return true;
  }
  // Streams come as whole events (the engine frames them), written as they come.
  if (x.call!.isStream) {
    const c = x.askedUsage ? dropAskedUsage(chunk) : chunk;
    return write(x, x.trail === undefined ? c : x.trail.pass(c));
  }
  // Keep the latest chunk back: the last one leaves with `res.end` (headers and body in one write, no cork round
  // trip through the next tick).
  const last = x.lastChunk;
  x.lastChunk = chunk;
  return last === undefined ? true : write(x, last);
}

function write(x: Exchange, chunk: Uint8Array): boolean {
  x.wrote = true;
  const ok = x.res.write(chunk);
  if (!ok && !x.waiting) {
    x.waiting = true;
    x.res.once('drain', () => {
      x.waiting = false;
      x.call?.resume();
    });
  }
  return ok;
}

/** `Sink.end`: the upstream body is complete. */
export function sinkEnd(x: Exchange): void {
  const res = x.res;
  const tr = x.translated;
  if (tr) {
    const call = x.call!;
    const out = tr.dialect.translateResponse!(
      call.status,
      flatHeaders(call.headers),
      Buffer.concat(tr.chunks),
      x.dreq!,
    );
    const buf = typeof out.body === 'string' ? Buffer.from(out.body) : Buffer.from(out.body);
    x.status = out.status;
    if (out.status < 300) tr.usage = usageFromBytes(buf);
    const h = tagged(x, x.px.redactor.headers(out.headers, false, 200));
    h['content-length'] = buf.length;
    if (tr.usage && x.px.wallet) costHeader(x, h, tr.usage);
    res.writeHead(out.status, h);
    res.end(buf);
    finish(x, undefined);
    return;
  }
  const costed = x.costed;
  if (costed !== undefined) {
    const call = x.call!;
    const buf = costed.length === 1 ? costed[0] : Buffer.concat(costed);
    x.costed = undefined;
    const h = tagged(x, x.px.redactor.headers(call.headers, true, call.status));
    const usage = call.upstreamError ? undefined : usageFromBytes(buf);
    if (usage) costHeader(x, h, usage);
    res.writeHead(call.status, h);
    x.wrote = true;
    res.end(buf);
    finish(x, call.upstreamError ? upstreamErrorEvent() : undefined);
    return;
  }
  const last = x.lastChunk;
  if (last !== undefined) {
    x.lastChunk = undefined;
    res.end(last);
  } else res.end();
  finish(x, x.call?.upstreamError ? upstreamErrorEvent() : undefined);
}

/** `Sink.error`: the upstream body broke off (or stalled, or flooded); a stream may be continued elsewhere. */
export function sinkError(x: Exchange, err: Error): void {
  const res = x.res;
  const gone = x.signal?.aborted === true;
  if (x.costed !== undefined) {
    x.costed = undefined;
    if (!gone && !res.headersSent) {
      sendStatus(res, 502, `Upstream response broke off: ${err.message}`, undefined, x.rateHeaders());
      x.status = 502;
    } else res.destroy();
    finish(x, err, gone ? 'client_closed' : 'upstream_stream_error');
    return;
  }
  if (x.trail?.canContinue && !gone && !res.destroyed && !res.writableEnded && x.call?.isStream) {
    void continueStream(x, err);
    return;
  }
  if (res.writableEnded) {
    // Already ended by this server (a shutdown's SSE error event): nothing more to say.
  } else if (!gone && x.call?.isStream && !res.destroyed && !x.translated) {
    res.end(streamEnding(err, x.px.settings.streamIdleTimeoutMs));
  } else if (x.translated && !res.headersSent && !gone) {
    sendStatus(res, 502, `Upstream response broke off: ${err.message}`, undefined, x.rateHeaders());
    x.status = 502;
  } else {
    res.destroy();
  }
  finish(x, err, gone ? 'client_closed' : 'upstream_stream_error');
}

/**
 * The server is shutting down and cannot wait for this stream any longer: it ends with an SSE error event (the
 * client's SDK raises it, rather than seeing a cut connection), and the upstream request is aborted.
 */
export function cutForShutdown(x: Exchange): void {
  const res = x.res;
  if (!res.destroyed && !res.writableEnded)
    res.end(
      sseError(
        'The gateway is shutting down and ended this stream; retry the request',
        'server_error',
        'server_shutting_down',
      ),
    );
  x.call?.abort(new Error('server shutting down'));
}

/** The SSE error event that ends a stream the upstream broke off, stalled or flooded. */
function streamEnding(err: Error, idleMs: number): string {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'ERR_LB_STREAM_TOO_LONG')
    return sseError(
      `The upstream stream was ended: ${err.message}`,
      'server_error',
      'upstream_stream_too_long',
    );
  if (code === 'ERR_LB_SSE_EVENT_TOO_LARGE')
    return sseError(
      `The upstream stream was ended: ${err.message}`,
      'server_error',
      'upstream_event_too_large',
    );
  if (/timeout/i.test(err.name) || /TIMEOUT/.test(code))
    return sseError(
      `The upstream stream stalled (no data for ${idleMs} ms) and was ended`,
      'server_error',
      'upstream_timeout',
    );
  return sseError(`The upstream stream broke off: ${err.message}`, 'server_error', 'upstream_stream_error');
}

function flatHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in h) {
    const v = h[k];
    if (typeof v === 'string') out[k] = v;
    else if (Array.isArray(v)) out[k] = v.join(', ');
  }
  return out;
}
