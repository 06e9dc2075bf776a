import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import {
  type AttemptContext,
  type Endpoint,
  errorFromStatus,
  isLbError,
  isNoHealthyEndpointError,
  type LbError,
  parseTags,
  type Router,
  type Usage,
} from '@lb/core';
import {
  type AttemptSettings,
  attemptTimeout,
  type HoldBudget,
  prepareUpstream,
  type Sink,
  StreamOpenError,
  sseError,
  type Transport,
  tagResponse,
} from '@lb/exchange';
import type { Dialect, DialectRequest } from '@lb/providers';
import { usageFromBytes } from '@lb/providers/internal';
import type { Agent } from 'undici';
import { asLbError, readBody, sendError, sendStatus, upstreamHeaders } from './http.js';
import type { ClientRequestRecord } from './observability/index.js';
import { JSON_OPERATIONS, MODEL_OPERATIONS, multipartField, operationOf } from './operations.js';
import type { ServerSettings } from './options.js';
import type { Redactor } from './redact.js';
import { scanBody } from './scan.js';
import { type EarlyResponder, UpstreamCall, undiciTimers, undiciTransport } from './upstream.js';

/** A provider dialect and what it gets to build the upstream request (`@lb/providers`). */
export type DialectLike = Dialect;
export type DialectRequestLike = DialectRequest;

/** What one client request leaves for the request log and HTTP metrics. */
export type ExchangeRecord = ClientRequestRecord;

/** Everything the proxy needs, shared by all requests. */
export interface ProxyContext {
  router: Router;
  transport: Agent;
  settings: ServerSettings;
  /** What this server's streams held for probation keep together (`settings.streamProbationMaxBytes`). */
  holdBudget: HoldBudget;
  defaultModel: string | undefined;
  dialect(name: string): DialectLike | undefined;
  /** Why no endpoint could ever serve a request nothing was tried for (unsupported operation or parameter…). */
  explain?(
    operation: string,
    model: string | undefined,
    features: readonly string[] | undefined,
  ): LbError | undefined;
  /** Token estimate of a request body, for token-per-minute limits; set only while some endpoint has one. */
  estimate: ((json: Record<string, any>) => number) | undefined;
  /** What a JSON body asks of an endpoint's provider (`n` > 1…); set only while some endpoint's provider lacks one. */
  features: ((operation: string, json: Record<string, any>) => readonly string[] | undefined) | undefined;
  record(rec: ExchangeRecord): void;
  onError(err: unknown, requestId: string): void;
  /** Masks configured secrets in response headers and non-2xx bodies (`redact.ts`); swapped on reload. */
  redactor: Redactor;
  /** OpenTelemetry (`@lb/otel`), when `@opentelemetry/api` is installed: the client's trace context in, each attempt's out. */
  trace?: TraceHooks;
}

/** What the proxy calls to carry trace context: before routing, and on each attempt's upstream headers. */
export interface TraceHooks {
  continueFrom(requestId: string, headers: IncomingHttpHeaders, operation: string): void;
  inject(requestId: string, headers: Record<string, string>): void;
}

/** The engine's settings for this server's attempts: built once per settings object (a reload swaps it). */
const engineSettings = new WeakMap<ServerSettings, AttemptSettings>();
const transports = new WeakMap<Agent, Transport>();

function attemptSettingsOf(px: ProxyContext): AttemptSettings {
  const s = px.settings;
  let a = engineSettings.get(s);
  if (a === undefined) {
    a = {
      idleTimeoutMs: s.streamIdleTimeoutMs,
      holdMs: s.streamProbationHoldMs,
      budget: px.holdBudget,
      maxEventBytes: s.maxEventBytes,
      timers: undiciTimers,
    };
    engineSettings.set(s, a);
  }
  return a;
}

function transportOf(agent: Agent): Transport {
  let t = transports.get(agent);
  if (t === undefined) transports.set(agent, (t = undiciTransport(agent)));
  return t;
}

/**
 * One attempt's request in OpenAI's format, for the endpoint's dialect. `json` is parsed only if the dialect reads
 * it (the OpenAI dialect does not when the model needs no mapping: the body goes as it came).
 */
class Outbound implements DialectRequest {
  constructor(
    readonly exchange: { jsonOf(): Record<string, any> | undefined },
    readonly endpoint: Endpoint,
    readonly operation: string,
    readonly method: string,
    readonly path: string,
    readonly headers: Record<string, string>,
    readonly body: Uint8Array | undefined,
    readonly upstreamModel: string | undefined,
    readonly stream: boolean,
    readonly model: string | undefined,
  ) {}

  get json(): Record<string, any> | undefined {
    return this.exchange.jsonOf();
  }
}

const perf = performance;
let seq = 0;
const PREFIX = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296)
  .toString(36)
  .padStart(2, '0')}`;

const EXECUTE_OPTIONS = { inspect: (c: UpstreamCall) => c, discard: (c: UpstreamCall) => c.dump() };

function upstreamErrorEvent(): Error {
  return new Error('upstream sent an error event mid-stream');
}

function clientGone(): Error {
  const e = new Error('client closed the connection');
  e.name = 'AbortError';
  return e;
}

/**
 * The client's side of a request's cancellation, as the router reads it: `aborted`, `reason` and abort listeners.
 * An `AbortController` costs an `EventTarget` (and its bookkeeping) per request; this costs one small object. It is
 * handed to the router only (never to undici or fetch, which want a real `AbortSignal`).
 */
class ClientSignal {
  aborted = false;
  reason: unknown = undefined;
  onabort: null = null;
  #listeners: Array<() => void> | undefined;

  addEventListener(type: string, fn: () => void): void {
    if (type === 'abort' && !this.aborted) (this.#listeners ??= []).push(fn);
  }

  removeEventListener(type: string, fn: () => void): void {
    const l = this.#listeners;
    if (type !== 'abort' || l === undefined) return;
    const i = l.indexOf(fn);
    if (i >= 0) l.splice(i, 1);
  }

  dispatchEvent(): boolean {
    return false;
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const l = this.#listeners;
    this.#listeners = undefined;
    if (l) for (const fn of l) fn();
  }
}

/**
 * One client request through the proxy: read, route, attempt with failover, then stream the chosen response to the
 * client. Also the `Sink` the upstream body flows into.
 */
export class Exchange implements Sink, EarlyResponder {
  readonly #px: ProxyContext;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #path: string;
  readonly #client: string | undefined;
  readonly #done?: () => void;
  readonly #t0 = perf.now();
  // Decimal: a small integer's digits come from V8's number-string cache, not a radix conversion in C++.
  readonly requestId = `req_${PREFIX}${++seq}`;
  #signal: ClientSignal | undefined;
  #call: UpstreamCall | undefined;
  #ctx: AttemptContext | undefined;
  /** Non-streaming bodies: the latest chunk, held back so that the last one leaves with `res.end(chunk)`. */
  #held: Uint8Array | undefined;
  #body: Buffer | undefined;
  #json: Record<string, any> | undefined;
  /** The body is a JSON object `scanBody` validated: `#json` is parsed from it when first needed. */
  #lazyJson = false;
  #fwd: Record<string, string> | undefined;
  #operation = 'other';
  #model: string | undefined;
  #features: readonly string[] | undefined;
  /** `x-lb-tags`: only endpoints carrying all of these serve the request. */
  #tags: readonly string[] | undefined;
  /** The scan saw a top-level parameter features are read from (`n`, `logprobs`…). */
  #featureParams = false;
  #stream = false;
  #attempts = 0;
  #status = 0;
  #ttfb: number | undefined;
  #waiting = false;
  #wrote = false;
  #finished = false;
  /** The router is running the attempts (its `execute` has not returned). */
  #routing = false;
  /** The client was answered from `settled`, ahead of the router's bookkeeping. */
  #early = false;
  #translated: { dialect: DialectLike; chunks: Uint8Array[]; usage?: Usage } | undefined;
  #dreq: DialectRequestLike | undefined;

  /** `done` runs when the response closes (the server's in-flight count). */
  constructor(
    px: ProxyContext,
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    client?: string,
    done?: () => void,
  ) {
    this.#px = px;
    this.#req = req;
    this.#res = res;
    this.#path = path;
    this.#client = client;
    this.#done = done;
    // One listener for both: 'close' fires once, so `on` spares the `once` wrapper.
    res.on('close', this.#onClose);
  }

  /**
   * Reads the body (when the method has one), routes and sends the request upstream, all in the step the body's last
   * bytes arrive in; answers the client later. Never throws: an unexpected error is logged and answered with a 500.
   */
  run(): void {
    try {
      const req = this.#req;
      const method = req.method ?? 'GET';
      this.#operation = operationOf(method, this.#path);
      if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE')
        readBody(req, this.#px.settings.bodyLimitBytes, this);
      else void this.#route();
    } catch (e) {
      this.#crashed(e);
    }
  }

  /** @internal `BodySink`: the request body is in. */
  onBody(body: Buffer | null): void {
    if (body === null) {
      const limit = this.#px.settings.bodyLimitBytes;
      this.#fail(413, `Request body exceeds the limit of ${limit} bytes`, 'request_too_large');
      return;
    }
    if (body.length) this.#body = body;
    void this.#route();
  }

  /** @internal `BodySink`: the client went away while sending the body. */
  onBodyError(): void {
    this.#status = 499;
    this.#res.destroy();
    this.#finish(undefined, 'client_closed');
  }

  #crashed(err: unknown): void {
    const res = this.#res;
    this.#px.onError(err, this.requestId);
    if (!res.headersSent) sendStatus(res, 500, 'Internal gateway error');
    else res.destroy();
  }

  /** Everything after the body: validation, routing, the attempts (the first one is sent before any await). */
  async #route(): Promise<void> {
    try {
      const req = this.#req;
      const res = this.#res;
      const px = this.#px;
      const body = this.#body;
      const ct = req.headers['content-type'];
      if (body !== undefined) {
        const isJson = ct === undefined || ct.includes('json');
        // Most requests need only `model` and `stream`: a validating scan spares building the body's objects.
        const fields = isJson ? scanBody(body) : undefined;
        if (fields !== undefined) {
          this.#model = fields.model;
          this.#stream = fields.stream;
          this.#featureParams = fields.featureParams;
          this.#lazyJson = true;
        } else if (isJson) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(body.toString('utf8'));
          } catch (e) {
            if (ct !== undefined || JSON_OPERATIONS.has(this.#operation)) {
              this.#fail(
                400,
                `We could not parse the JSON body of your request: ${(e as Error).message}`,
                'invalid_json',
              );
              return;
            }
          }
          if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
            const j = parsed as Record<string, any>;
            this.#json = j;
            if (typeof j.model === 'string') this.#model = j.model;
            else if (j.model !== undefined) {
              this.#fail(
                400,
                `"model" must be a string, received ${JSON.stringify(j.model)}`,
                'invalid_model',
              );
              return;
            }
            this.#stream = j.stream === true;
          } else if (JSON_OPERATIONS.has(this.#operation)) {
            this.#fail(400, 'The request body must be a JSON object', 'invalid_request');
            return;
          }
        } else if (JSON_OPERATIONS.has(this.#operation)) {
          this.#fail(
            415,
            `Unsupported Content-Type ${JSON.stringify(ct)}: this endpoint expects application/json`,
            'unsupported_media_type',
          );
          return;
        } else if (ct.startsWith('multipart/form-data')) {
          this.#model = multipartField(body, ct, 'model');
        }
      } else if (JSON_OPERATIONS.has(this.#operation) && req.method === 'POST') {
        this.#fail(400, 'The request body is empty: expected a JSON object', 'invalid_request');
        return;
      }
      if (
        this.#model === undefined &&
        px.defaultModel !== undefined &&
        MODEL_OPERATIONS.has(this.#operation)
      ) {
        this.#model = px.defaultModel;
        const json = this.jsonOf();
        if (json) {
          this.#json = { ...json, model: px.defaultModel };
          this.#body = Buffer.from(JSON.stringify(this.#json));
        }
      }
      this.#fwd = upstreamHeaders(req.headers);
      const tags = req.headers['x-lb-tags'];
      if (tags !== undefined) this.#tags = parseTags(tags);
      const signal = new ClientSignal();
      this.#signal = signal;
      if (res.destroyed) signal.abort(clientGone());
      // A scanned body with none of the parameters features are read from asks for none: no parse.
      if (px.features !== undefined && (this.#json !== undefined || (this.#lazyJson && this.#featureParams)))
        this.#features = px.features(this.#operation, this.jsonOf()!);
      let call: UpstreamCall;
      px.trace?.continueFrom(this.requestId, req.headers, this.#operation);
      this.#routing = true;
      try {
        call = await px.router.execute(
          {
            model: this.#model,
            requestId: this.requestId,
            signal: signal as unknown as AbortSignal,
            operation: this.#operation,
            client: this.#client,
            features: this.#features,
            tags: this.#tags,
            estimatedTokens:
              px.estimate !== undefined && this.#hasJson() ? px.estimate(this.jsonOf()!) : undefined,
          },
          this.#attempt,
          EXECUTE_OPTIONS,
        );
      } catch (e) {
        this.#routing = false;
        // Answered already: only a listener throwing in the router's bookkeeping gets here.
        if (this.#early) return px.onError(e, this.requestId);
        return this.#failed(e);
      }
      this.#routing = false;
      if (!this.#early) this.#respond(call);
    } catch (e) {
      this.#crashed(e);
    }
  }

  /** @internal `EarlyResponder`: a 2xx settled the current attempt; answer now. */
  settled(call: UpstreamCall): void {
    if (call !== this.#call || this.#res.destroyed) return;
    this.#early = true;
    try {
      this.#respond(call);
    } catch (e) {
      this.#crashed(e);
    }
  }

  #hasJson(): boolean {
    return this.#json !== undefined || this.#lazyJson;
  }

  /** @internal The body as an object (parsed on first use when only scanned). */
  jsonOf(): Record<string, any> | undefined {
    if (this.#json === undefined && this.#lazyJson) {
      this.#lazyJson = false;
      this.#json = JSON.parse(this.#body!.toString('utf8')) as Record<string, any>;
    }
    return this.#json;
  }

  #onClose = (): void => {
    this.#done?.();
    if (this.#res.writableFinished) return;
    // A client that left at the upstream's error event (the SDK raises it and hangs up) leaves a broken stream: the
    // endpoint failed first, so its attempt ends as one before the abort would count it as the caller's doing.
    if (this.#call?.upstreamError) this.#finish(upstreamErrorEvent(), 'upstream_stream_error');
    const reason = clientGone();
    this.#signal?.abort(reason);
    this.#call?.abort(reason);
  };

  #attempt = (ctx: AttemptContext): Promise<UpstreamCall> => {
    const px = this.#px;
    const ep = ctx.endpoint;
    this.#attempts = ctx.attempt;
    this.#ctx = ctx;
    const s = px.settings;
    const stream = this.#stream;
    const dialect = px.dialect(ep.provider);
    if (dialect === undefined)
      return Promise.reject(new Error(`unknown provider ${JSON.stringify(ep.provider)}`));
    const dreq = new Outbound(
      this,
      ep,
      this.#operation,
      this.#req.method ?? 'GET',
      this.#path,
      this.#fwd!,
      this.#body,
      ctx.upstreamModel,
      stream,
      this.#model,
    );
    const up = prepareUpstream(dialect, dreq);
    const translator = stream ? dialect.createStreamTranslator?.(dreq) : undefined;
    this.#translated = !stream && dialect.translateResponse ? { dialect, chunks: [] } : undefined;
    this.#dreq = dreq;
    // The deadline bounds every wait: an attempt's timeout is the smaller of its own and what is left of it.
    const call = new UpstreamCall(
      attemptSettingsOf(px),
      stream,
      stream ? attemptTimeout(s.streamFirstByteTimeoutMs, ctx.deadline) : 0,
      stream ? ctx : undefined,
      ctx.streamProbation,
      translator,
    );
    call.early = this;
    this.#call = call;
    px.trace?.inject(ctx.requestId, up.headers);
    const signal = ctx.signal;
    if (signal?.aborted) return Promise.reject(signal.reason ?? clientGone());
    // The router's own signal (an attempt timeout) is followed; the client's is this exchange's to act on.
    if (signal !== (this.#signal as unknown as AbortSignal)) call.follow(signal);
    try {
      transportOf(px.transport).send(
        {
          origin: up.origin,
          path: up.path,
          method: up.method,
          headers: up.headers,
          body: up.body,
          timeoutMs: stream ? 0 : attemptTimeout(ep.timeoutMs ?? s.timeoutMs, ctx.deadline),
        },
        call,
      );
    } catch (e) {
      return Promise.reject(e);
    }
    return call.promise;
  };

  #respond(call: UpstreamCall): void {
    const res = this.#res;
    this.#call = call;
    this.#status = call.status;
    if (res.destroyed) {
      call.abort(clientGone());
      return;
    }
    // Secrets: headers always, bodies of non-2xx answers (redact.ts).
    const rd = this.#px.redactor;
    const sink = call.status >= 200 && call.status < 300 ? this : rd.sink(this);
    if (this.#translated) {
      // The dialect rewrites whole bodies: collect, then translate in `end`.
      call.attach(sink);
      return;
    }
    res.writeHead(call.status, this.#tagged(rd.headers(call.headers, !call.isStream, call.status)));
    call.attach(sink);
    // A stream's headers leave with its first event (held back by the gate, written by `attach`) in one write;
    // alone only when no event came yet.
    if (call.isStream && !this.#wrote && !res.writableEnded) res.flushHeaders();
  }

  /** Adds the gateway's own response headers (`responseHeaders`): who answered, after how many attempts. */
  #tagged(h: OutgoingHttpHeaders): OutgoingHttpHeaders {
    if (this.#px.settings.responseHeaders) tagResponse(h, this.#ctx!);
    return h;
  }

  // ---------------------------------------------------------------- Sink

  data(chunk: Uint8Array): boolean {
    if (this.#ttfb === undefined) this.#ttfb = perf.now() - this.#t0;
    if (this.#translated) {
      this.#translated.chunks.push(chunk);
      return true;
    }
    // Streams come as whole events (the engine frames them), written as they come.
    if (this.#call!.isStream) return this.#write(chunk);
    // Hold the latest chunk back: the last one leaves with `res.end` (headers and body in one write, no cork
    // round trip through the next tick).
    const held = this.#held;
    this.#held = chunk;
    return held === undefined ? true : this.#write(held);
  }

  #write(chunk: Uint8Array): boolean {
    this.#wrote = true;
    const ok = this.#res.write(chunk);
    if (!ok && !this.#waiting) {
      this.#waiting = true;
      this.#res.once('drain', () => {
        this.#waiting = false;
        this.#call?.resume();
      });
    }
    return ok;
  }

  end(): void {
    const res = this.#res;
    const tr = this.#translated;
    if (tr) {
      const call = this.#call!;
      const out = tr.dialect.translateResponse!(
        call.status,
        flatHeaders(call.headers),
        Buffer.concat(tr.chunks),
        this.#dreq!,
      );
      const buf = typeof out.body === 'string' ? Buffer.from(out.body) : Buffer.from(out.body);
      this.#status = out.status;
      if (out.status < 300) tr.usage = usageFromBytes(buf);
      const h = this.#tagged(this.#px.redactor.headers(out.headers, false, 200));
      h['content-length'] = buf.length;
      res.writeHead(out.status, h);
      res.end(buf);
      this.#finish(undefined);
      return;
    }
    const held = this.#held;
    if (held !== undefined) {
      this.#held = undefined;
      res.end(held);
    } else res.end();
    this.#finish(this.#call?.upstreamError ? upstreamErrorEvent() : undefined);
  }

  error(err: Error): void {
    const res = this.#res;
    const gone = this.#signal?.aborted === true;
    if (!gone && this.#call?.isStream && !res.destroyed && !this.#translated) {
      res.end(streamEnding(err, this.#px.settings.streamIdleTimeoutMs));
    } else if (this.#translated && !res.headersSent && !gone) {
      sendStatus(res, 502, `Upstream response broke off: ${err.message}`);
      this.#status = 502;
    } else {
      res.destroy();
    }
    this.#finish(err, gone ? 'client_closed' : 'upstream_stream_error');
  }

  // ---------------------------------------------------------------- outcomes

  #failed(e: unknown): void {
    const res = this.#res;
    if (isNoHealthyEndpointError(e)) {
      const last = e.lastValue;
      if (last instanceof UpstreamCall) last.dump();
    }
    if (this.#signal?.aborted) {
      this.#status = 499;
      if (!res.destroyed) res.destroy();
      this.#finish(undefined, 'client_closed');
      return;
    }
    if (e instanceof StreamOpenError) {
      // A client error reported inside the stream's first event: answer it as a plain error.
      const err = errorFromStatus(e.status, this.#px.redactor.text(e.message));
      this.#status = err.status;
      sendError(res, err);
      this.#finish(undefined, err.type);
      return;
    }
    if (this.#attempts === 0 && this.#px.explain) {
      // Nothing was tried: say why no endpoint can ever serve this (unknown model, unsupported operation or
      // parameter).
      const why = this.#px.explain(this.#operation, this.#model, this.#features);
      if (why) {
        this.#status = why.status;
        sendError(res, why);
        this.#finish(undefined, why.type);
        return;
      }
    }
    const err = asLbError(e);
    if (!isLbError(e)) this.#px.onError(e, this.requestId);
    this.#status = err.status;
    sendError(
      res,
      err,
      this.#attempts > 0 && this.#px.settings.responseHeaders
        ? { 'x-lb-request-id': this.requestId, 'x-lb-attempts': this.#attempts }
        : { 'x-lb-request-id': this.requestId },
    );
    this.#finish(undefined, err.code);
  }

  #fail(status: number, message: string, code: string): void {
    const err = errorFromStatus(status, message);
    (err as { code: string }).code = code;
    this.#status = status;
    sendError(this.#res, err);
    this.#finish(undefined, err.type);
  }

  #finish(err: unknown, errorType?: string): void {
    if (this.#finished) return;
    this.#finished = true;
    // Answered early and done before the router accounted for the attempt (its continuation is already queued):
    // the hold's release and the record follow it, so that the router's events keep their order.
    if (this.#routing) queueMicrotask(() => this.#settleUp(err, errorType));
    else this.#settleUp(err, errorType);
  }

  #settleUp(err: unknown, errorType: string | undefined): void {
    const release = this.#call?.release;
    if (release) {
      this.#call!.release = undefined;
      release(err);
    }
    const call = this.#call;
    const usage = this.#translated?.usage ?? (this.#status < 300 ? call?.usage() : undefined);
    if (usage && this.#ctx) this.#ctx.reportUsage(usage);
    const up = call?.headers;
    const upstreamId = up === undefined ? undefined : headerText(up['x-request-id'] ?? up['request-id']);
    const clientId = this.#req.headers['x-request-id'];
    this.#px.record({
      requestId: this.requestId,
      client: this.#client,
      method: this.#req.method ?? 'GET',
      path: this.#path,
      model: this.#model,
      stream: this.#stream,
      status: this.#status,
      latencyMs: perf.now() - this.#t0,
      ttfbMs: this.#ttfb,
      endpointId: this.#ctx?.endpoint.id,
      attempts: this.#attempts,
      errorType:
        errorType ?? (err ? 'upstream_stream_error' : this.#status >= 400 ? 'upstream_error' : undefined),
      usage,
      upstreamRequestId: upstreamId === undefined ? undefined : this.#px.redactor.text(upstreamId),
      clientRequestId: clientId === undefined ? undefined : headerText(clientId),
    });
  }
}

/** The SSE error event that ends a stream the upstream broke off, stalled or flooded. */
function streamEnding(err: Error, idleMs: number): string {
  const code = (err as { code?: string }).code ?? '';
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

/** A header's value for a record: the first one, at most 256 characters. */
function headerText(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s.length <= 256 ? s : s.slice(0, 256);
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
