// One attempt of a call on the endpoint the router chose: the upstream request through the endpoint's dialect,
// sent and judged by the engine (`@lb/exchange`'s `Attempt`: the first-content gate, error events, probation,
// timeouts), and the `Response` it becomes for the caller — an event stream through the engine, a translated
// answer, a priced JSON answer, or the fetch response passed on as it came.
import type { AttemptContext } from '@lb/core';
import {
  Attempt,
  attemptTimeout,
  BodyCollector,
  prepareUpstream,
  StreamOpenError,
  tagResponse,
} from '@lb/exchange';
import { type DialectRequest, getDialect, stripHopByHop } from '@lb/providers';
import { usageFromBytes } from '@lb/providers/internal';
import type { Call } from './call.js';
import type { FetchClient } from './fetch-options.js';
import { COST_HEADER, costText } from './internal/cost.js';
import { streamBody, withUsage } from './internal/stream.js';
import { failureResponse, ownHeaders, tagInPlace } from './responses.js';

const encoder = new TextEncoder();

/** Runs `call` once on `ctx.endpoint`; rejects as the router should classify the failure. */
export async function attemptOn(c: FetchClient, call: Call, ctx: AttemptContext): Promise<Response> {
  const ep = ctx.endpoint;
  call.answeredBy = ep.id;
  const { req, stream, model, json } = call;
  const cj = call.bodyFor?.(ep.provider);
  const tag = c.tagged ? ctx : undefined;
  const dialect = getDialect(ep.provider);
  const dreq: DialectRequest = {
    endpoint: ep,
    operation: call.operation,
    method: req.method,
    path: call.path,
    headers: req.headers,
    body: cj === undefined ? req.body : encoder.encode(JSON.stringify(cj)),
    json: cj ?? json,
    upstreamModel: ctx.upstreamModel,
    stream,
    model,
  };
  const up = prepareUpstream(dialect, dreq);
  c.tracing?.inject(ctx.requestId, up.headers, call.operation);
  const translator = stream ? dialect.createStreamTranslator?.(dreq) : undefined;
  // The deadline bounds every wait: an attempt's timeout is the smaller of its own and what is left of it.
  const exchange = new Attempt(
    c.settings,
    stream,
    attemptTimeout(stream ? c.firstByteMs : undefined, ctx.deadline),
    stream ? ctx : undefined,
    ctx.streamProbation,
    translator,
  );
  exchange.follow(ctx.signal);
  c.upstream.send({ ...up, timeoutMs: 0 }, exchange);
  try {
    await exchange.promise;
  } catch (e) {
    // An error event before the first content (or while held on probation): the answer it stands for.
    if (e instanceof StreamOpenError) return failureResponse(e);
    throw e;
  }
  const cost = c.cost;
  const res = exchange.response;
  if (res === undefined && exchange.isStream) {
    // An event stream, through the engine: whole events, the idle timeout, usage and the router's hold.
    const headers = new Headers();
    for (const k in exchange.headers) {
      const v = exchange.headers[k];
      if (v !== undefined && k !== 'content-length' && k !== 'content-encoding')
        headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    }
    if (tag) tagResponse(headers, tag);
    if (translator) headers.set('content-type', 'text/event-stream');
    call.streaming = ep.id;
    const body = streamBody(exchange, {
      endpointId: ep.id,
      idleTimeoutMs: c.idleMs,
      signal: req.signal,
      reportUsage:
        cost === undefined
          ? ctx.reportUsage
          : (u) => ctx.reportUsage(u, cost(u, ctx.upstreamModel ?? model, ep)),
      secrets: [ep.apiKey],
      dropAskedUsage: call.askedUsage,
    });
    return new Response(body, { status: exchange.status, headers });
  }
  if (res === undefined) return answerOf(c, exchange, ctx, dialect, dreq, tag, req.signal);
  if (dialect.translateResponse) {
    const raw = new Uint8Array(await res.arrayBuffer());
    const h: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      h[k] = v;
    });
    return translated(c, dialect, dreq, ctx, res.status, h, raw, tag);
  }
  if (cost !== undefined && res.ok && res.body && (res.headers.get('content-type') ?? '').includes('json')) {
    // `x-lb-cost` goes in the headers: the body (usage at its end) is read whole first.
    const raw = new Uint8Array(await res.arrayBuffer());
    const headers = ownHeaders(res, tag);
    priceInto(c, ctx, model, raw, headers);
    return new Response(raw, { status: res.status, statusText: res.statusText, headers });
  }
  // Token usage for whoever listens (TPM budgets, metrics), read from the body as the caller reads it.
  if (
    res.ok &&
    res.body &&
    (res.headers.get('content-type') ?? '').includes('json') &&
    c.router.listenerCount('attempt:usage') > 0
  )
    return withUsage(res, ctx.reportUsage, ownHeaders(res, tag));
  return tag ? tagInPlace(res, tag) : res;
}

/**
 * A whole answer that came through the dispatcher (not an event stream) as the caller's `Response`: a 2xx JSON body
 * is read whole (its usage priced into `x-lb-cost`, or reported to whoever listens), a dialect's answer translated;
 * any other body (a failure, audio, a file's content) is passed on as it flows, so that a failed attempt's body is
 * dropped unread when the router fails over (`discard`), however large an upstream makes it.
 */
async function answerOf(
  c: FetchClient,
  exchange: Attempt,
  ctx: AttemptContext,
  dialect: ReturnType<typeof getDialect>,
  dreq: DialectRequest,
  tag: AttemptContext | undefined,
  signal: AbortSignal | undefined,
): Promise<Response> {
  const status = exchange.status;
  // The body is the bytes as they came: its length stays true; only hop-by-hop headers go.
  const h = stripHopByHop(exchange.headers, { credentials: false });
  if (status === 204 || status === 205 || status === 304 || dreq.method === 'HEAD') {
    // No body by definition (a `Response` refuses one).
    exchange.dump();
    if (tag) tagResponse(h, tag);
    return new Response(null, { status, headers: h });
  }
  const json = (h['content-type'] ?? '').includes('json');
  if ((status >= 300 || !json) && dialect.translateResponse === undefined) {
    if (tag) tagResponse(h, tag);
    const body = streamBody(exchange, {
      endpointId: ctx.endpoint.id,
      idleTimeoutMs: 0,
      signal,
      reportUsage: NO_USAGE,
      secrets: [ctx.endpoint.apiKey],
    });
    return new Response(body, { status, headers: h });
  }
  const raw = await bodyOf(exchange);
  if (dialect.translateResponse) return translated(c, dialect, dreq, ctx, status, h, raw, tag);
  if (tag) tagResponse(h, tag);
  if (status < 300) {
    if (c.cost !== undefined) priceInto(c, ctx, dreq.model, raw, h);
    else if (c.router.listenerCount('attempt:usage') > 0) {
      const usage = usageFromBytes(raw);
      if (usage) ctx.reportUsage(usage);
    }
  }
  return new Response(raw as BodyInit, { status, headers: h });
}

const NO_USAGE = () => {};

/** The whole body of `exchange` (after it settled), as one byte array. */
async function bodyOf(exchange: Attempt): Promise<Uint8Array> {
  const body = new BodyCollector();
  exchange.attach(body);
  await body.done;
  return body.bytes();
}

/** Prices a JSON answer's usage into `x-lb-cost` (when its model has a price) and reports it with its cost. */
function priceInto(
  c: FetchClient,
  ctx: AttemptContext,
  model: string | undefined,
  raw: Uint8Array,
  headers: Headers | Record<string, string>,
): void {
  const usage = usageFromBytes(raw);
  if (!usage) return;
  const usd = c.cost!(usage, ctx.upstreamModel ?? model, ctx.endpoint);
  if (usd !== undefined) {
    if (headers instanceof Headers) headers.set(COST_HEADER, costText(usd));
    else headers[COST_HEADER] = costText(usd);
  }
  ctx.reportUsage(usage, usd);
}

/** A dialect's whole answer translated to OpenAI's shape, tagged and priced. */
function translated(
  c: FetchClient,
  dialect: ReturnType<typeof getDialect>,
  dreq: DialectRequest,
  ctx: AttemptContext,
  status: number,
  h: Record<string, string>,
  raw: Uint8Array,
  tag: AttemptContext | undefined,
): Response {
  const t = dialect.translateResponse!(status, h, raw, dreq);
  if (tag) tagResponse(t.headers, tag);
  if (c.cost !== undefined && t.status < 300)
    priceInto(
      c,
      ctx,
      dreq.model,
      typeof t.body === 'string' ? encoder.encode(t.body) : (t.body as Uint8Array),
      t.headers,
    );
  return new Response(t.body as BodyInit, { status: t.status, headers: t.headers });
}
