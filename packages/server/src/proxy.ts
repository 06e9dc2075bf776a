import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import {
  type AttemptContext,
  type Endpoint,
  errorFromStatus,
  isLbError,
  isNoHealthyEndpointError,
  type Router,
  type Usage,
} from '@lb/core';
import type { Agent } from 'undici';
import { asLbError, clientHeaders, readBody, sendError, sendStatus, upstreamHeaders } from './http.js';
import { JSON_OPERATIONS, MODEL_OPERATIONS, multipartField, operationOf } from './operations.js';
import type { ServerSettings } from './options.js';
import { lastEventEnd, sseError } from './sse.js';
import { type Sink, StreamOpenError, type TextTranslator, UpstreamCall } from './upstream.js';

/** A provider dialect, structurally (the `Dialect` interface of `@lb/providers`). */
export interface DialectLike {
  readonly name: string;
  supports(operation: string): boolean;
  prepare(req: DialectRequestLike): {
    url: string;
    method: string;
    headers: Record<string, string>;
    body: Uint8Array | string | undefined;
  };
  translateResponse?(
    status: number,
    headers: Record<string, string>,
    body: Uint8Array,
    req: DialectRequestLike,
  ): { status: number; headers: Record<string, string>; body: Uint8Array | string };
  createStreamTranslator?(req: DialectRequestLike): TextTranslator;
}

/** What a dialect gets to build the upstream request. */
export interface DialectRequestLike {
  endpoint: Endpoint;
  operation: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
  json: Record<string, any> | undefined;
  upstreamModel: string | undefined;
  stream: boolean;
}

/** What one client request leaves for the request log and HTTP metrics. */
export interface ExchangeRecord {
  requestId: string;
  client: string | undefined;
  method: string;
  path: string;
  model: string | undefined;
  stream: boolean;
  status: number;
  latencyMs: number;
  ttfbMs?: number;
  endpointId?: string;
  attempts: number;
  errorType?: string;
  usage?: Usage;
}

/** Everything the proxy needs, shared by all requests. */
export interface ProxyContext {
  router: Router;
  transport: Agent;
  settings: ServerSettings;
  defaultModel: string | undefined;
  dialect(name: string): DialectLike | undefined;
  /** Vetoes a request no endpoint could serve (unsupported operation…) before routing. */
  explain?(
    operation: string,
    model: string | undefined,
  ): { status: number; message: string; code: string } | undefined;
  /** Token estimate of a request body, for token-per-minute limits; set only while some endpoint has one. */
  estimate: ((json: Record<string, any>) => number) | undefined;
  record(rec: ExchangeRecord): void;
  onError(err: unknown, requestId: string): void;
}

interface Target {
  origin: string;
  base: string;
  auth: Record<string, string>;
}

const targets = new WeakMap<Endpoint, Target>();

function targetOf(ep: Endpoint): Target {
  let t = targets.get(ep);
  if (!t) {
    const u = new URL(ep.url);
    const auth: Record<string, string> = { ...ep.headers };
    if (ep.apiKey) auth.authorization = `Bearer ${ep.apiKey}`;
    t = { origin: u.origin, base: u.pathname === '/' ? '' : u.pathname, auth };
    targets.set(ep, t);
  }
  return t;
}

const perf = performance;
let seq = 0;
const PREFIX = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;

const inspect = (c: UpstreamCall) => c;
const discard = (c: UpstreamCall) => c.dump();
const NL2 = Buffer.from('\n\n');

function clientGone(): Error {
  const e = new Error('client closed the connection');
  e.name = 'AbortError';
  return e;
}

/**
 * One client request through the proxy: read, route, attempt with failover, then stream the chosen response to the
 * client. Also the `Sink` the upstream body flows into.
 */
export class Exchange implements Sink {
  readonly #px: ProxyContext;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #path: string;
  readonly #client: string | undefined;
  readonly #t0 = perf.now();
  readonly requestId = `req_${PREFIX}${(++seq).toString(36)}`;
  #ac: AbortController | undefined;
  #call: UpstreamCall | undefined;
  #ctx: AttemptContext | undefined;
  #release: ((err?: unknown) => void) | undefined;
  #body: Buffer | undefined;
  #json: Record<string, any> | undefined;
  #fwd: Record<string, string> | undefined;
  #operation = 'other';
  #model: string | undefined;
  #stream = false;
  #attempts = 0;
  #status = 0;
  #ttfb: number | undefined;
  #tail: Buffer | undefined;
  #last: Buffer | undefined;
  #prev: Buffer | undefined;
  #waiting = false;
  #done = false;
  #upstreamError = false;
  #translated: { dialect: DialectLike; chunks: Buffer[] } | undefined;
  #dreq: DialectRequestLike | undefined;

  constructor(px: ProxyContext, req: IncomingMessage, res: ServerResponse, path: string, client?: string) {
    this.#px = px;
    this.#req = req;
    this.#res = res;
    this.#path = path;
    this.#client = client;
  }

  async run(): Promise<void> {
    const req = this.#req;
    const res = this.#res;
    const px = this.#px;
    const method = req.method ?? 'GET';
    this.#operation = operationOf(method, this.#path);
    if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE') {
      let body: Buffer | null;
      try {
        body = await readBody(req, px.settings.bodyLimitBytes);
      } catch {
        this.#status = 499;
        res.destroy();
        this.#finish(undefined, 'client_closed');
        return;
      }
      if (body === null) {
        this.#fail(
          413,
          `Request body exceeds the limit of ${px.settings.bodyLimitBytes} bytes`,
          'request_too_large',
        );
        return;
      }
      if (body.length) this.#body = body;
    }
    const body = this.#body;
    const ct = req.headers['content-type'];
    if (body !== undefined) {
      const isJson = ct === undefined || ct.includes('json');
      if (isJson) {
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
            this.#fail(400, `"model" must be a string, received ${JSON.stringify(j.model)}`, 'invalid_model');
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
    } else if (JSON_OPERATIONS.has(this.#operation) && method === 'POST') {
      this.#fail(400, 'The request body is empty: expected a JSON object', 'invalid_request');
      return;
    }
    if (this.#model === undefined && px.defaultModel !== undefined && MODEL_OPERATIONS.has(this.#operation)) {
      this.#model = px.defaultModel;
      if (this.#json) {
        this.#json = { ...this.#json, model: px.defaultModel };
        this.#body = Buffer.from(JSON.stringify(this.#json));
      }
    }
    this.#fwd = upstreamHeaders(req.headers);
    const ac = new AbortController();
    this.#ac = ac;
    res.once('close', this.#onClose);
    let call: UpstreamCall;
    try {
      call = await px.router.execute(
        {
          model: this.#model,
          requestId: this.requestId,
          signal: ac.signal,
          operation: this.#operation,
          client: this.#client,
          estimatedTokens:
            px.estimate !== undefined && this.#json !== undefined ? px.estimate(this.#json) : undefined,
        },
        this.#attempt,
        { inspect, discard },
      );
    } catch (e) {
      return this.#failed(e);
    }
    this.#respond(call);
  }

  #onClose = (): void => {
    if (this.#res.writableFinished) return;
    const reason = clientGone();
    this.#ac?.abort(reason);
    this.#call?.abort(reason);
  };

  #attempt = (ctx: AttemptContext): Promise<UpstreamCall> => {
    const px = this.#px;
    const ep = ctx.endpoint;
    this.#attempts = ctx.attempt;
    this.#ctx = ctx;
    const s = px.settings;
    const stream = this.#stream;
    let origin: string;
    let path: string;
    let method = this.#req.method ?? 'GET';
    let headers: Record<string, string>;
    let body: Buffer | Uint8Array | string | undefined = this.#body;
    let translator: TextTranslator | undefined;
    const dialect = ep.provider === 'openai' ? undefined : px.dialect(ep.provider);
    if (dialect) {
      const dreq: DialectRequestLike = {
        endpoint: ep,
        operation: this.#operation,
        method,
        path: this.#path,
        headers: this.#fwd!,
        body: this.#body,
        json: this.#json,
        upstreamModel: ctx.upstreamModel,
        stream,
      };
      const up = dialect.prepare(dreq);
      const u = new URL(up.url);
      origin = u.origin;
      path = u.pathname + u.search;
      method = up.method;
      headers = up.headers;
      body = up.body;
      if (stream && dialect.createStreamTranslator) translator = dialect.createStreamTranslator(dreq);
      this.#translated = !stream && dialect.translateResponse ? { dialect, chunks: [] } : undefined;
      this.#dreq = dreq;
    } else {
      const t = targetOf(ep);
      origin = t.origin;
      path = t.base + this.#path;
      headers = Object.assign({}, this.#fwd, t.auth);
      const json = this.#json;
      if (json !== undefined && ctx.upstreamModel !== undefined && ctx.upstreamModel !== json.model) {
        body = JSON.stringify({ ...json, model: ctx.upstreamModel });
      }
      this.#translated = undefined;
    }
    const call = new UpstreamCall(stream, s.streamFirstByteTimeoutMs, translator);
    this.#call = call;
    const signal = ctx.signal;
    if (signal?.aborted) return Promise.reject(signal.reason ?? clientGone());
    if (signal && signal !== this.#ac!.signal) {
      const onAbort = () => call.abort(signal.reason ?? clientGone());
      signal.addEventListener('abort', onAbort, { once: true });
      call.promise.then(
        () => signal.removeEventListener('abort', onAbort),
        () => signal.removeEventListener('abort', onAbort),
      );
    }
    const timeout = ep.timeoutMs ?? s.timeoutMs;
    try {
      px.transport.dispatch(
        {
          origin,
          path,
          method: method as 'POST',
          headers,
          body: body as Buffer | string | undefined,
          headersTimeout: stream ? s.streamFirstByteTimeoutMs : timeout,
          bodyTimeout: stream ? s.streamIdleTimeoutMs : timeout,
          blocking: true,
        },
        call,
      );
    } catch (e) {
      return Promise.reject(e);
    }
    if (!stream) return call.promise;
    return call.promise.then((c) => {
      if (c.isStream) this.#release = ctx.hold();
      return c;
    });
  };

  #respond(call: UpstreamCall): void {
    const res = this.#res;
    this.#call = call;
    this.#status = call.status;
    if (res.destroyed) {
      call.abort(clientGone());
      return;
    }
    if (this.#translated) {
      // The dialect rewrites whole bodies: collect, then translate in `end`.
      call.attach(this);
      return;
    }
    res.writeHead(call.status, clientHeaders(call.headers, !call.isStream));
    if (call.isStream) res.flushHeaders();
    call.attach(this);
  }

  // ---------------------------------------------------------------- Sink

  data(chunk: Buffer): boolean {
    if (this.#ttfb === undefined) this.#ttfb = perf.now() - this.#t0;
    if (this.#translated) {
      this.#translated.chunks.push(chunk);
      return true;
    }
    const call = this.#call!;
    if (!call.isStream) {
      this.#prev = this.#last;
      this.#last = chunk;
      return this.#write(chunk);
    }
    // Streams: forward whole events only, so that an error event never lands inside a half-written one.
    if (this.#tail !== undefined) {
      chunk = Buffer.concat([this.#tail, chunk]);
      this.#tail = undefined;
    }
    const n = chunk.length;
    if (!(n >= 2 && chunk[n - 1] === 10 && chunk[n - 2] === 10)) {
      const end = lastEventEnd(chunk);
      if (end < 0) {
        this.#tail = chunk;
        return true;
      }
      if (end < n) {
        this.#tail = chunk.subarray(end);
        chunk = chunk.subarray(0, end);
      }
    }
    if (chunk.indexOf('"prompt_tokens"') >= 0) this.#last = chunk;
    if (chunk.indexOf('data: {"error"') >= 0) this.#upstreamError = true;
    return this.#write(chunk);
  }

  #write(chunk: Buffer): boolean {
    const ok = this.#res.write(chunk);
    if (!ok && !this.#waiting) {
      this.#waiting = true;
      this.#res.once('drain', this.#onDrain);
    }
    return ok;
  }

  #onDrain = (): void => {
    this.#waiting = false;
    this.#call?.resume();
  };

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
      this.#last = buf;
      const h = clientHeaders(out.headers, false);
      h['content-length'] = buf.length;
      res.writeHead(out.status, h);
      res.end(buf);
      this.#finish(undefined);
      return;
    }
    if (this.#tail !== undefined && this.#tail.length) {
      // An unterminated last event: terminate it so the client parses it.
      res.write(this.#tail);
      res.write(NL2);
      this.#tail = undefined;
    }
    res.end();
    this.#finish(this.#upstreamError ? new Error('upstream sent an error event mid-stream') : undefined);
  }

  error(err: Error): void {
    const res = this.#res;
    const gone = this.#ac?.signal.aborted === true;
    if (!gone && this.#call?.isStream && !res.destroyed && !this.#translated) {
      this.#tail = undefined;
      const timeout = /timeout/i.test(err.name) || /TIMEOUT/.test((err as { code?: string }).code ?? '');
      res.end(
        sseError(
          timeout
            ? `The upstream stream stalled (no data for ${this.#px.settings.streamIdleTimeoutMs} ms) and was ended`
            : `The upstream stream broke off: ${err.message}`,
          'server_error',
          timeout ? 'upstream_timeout' : 'upstream_stream_error',
        ),
      );
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
    if (this.#ac?.signal.aborted) {
      this.#status = 499;
      if (!res.destroyed) res.destroy();
      this.#finish(undefined, 'client_closed');
      return;
    }
    if (e instanceof StreamOpenError) {
      // A client error reported inside the stream's first event: answer it as a plain error.
      const err = errorFromStatus(e.status, e.message);
      this.#status = err.status;
      sendError(res, err);
      this.#finish(undefined, err.type);
      return;
    }
    if (this.#attempts === 0 && this.#px.explain) {
      // Nothing was tried: say why no endpoint can ever serve this (unknown model, unsupported operation).
      const why = this.#px.explain(this.#operation, this.#model);
      if (why) {
        this.#fail(why.status, why.message, why.code);
        return;
      }
    }
    const err = asLbError(e);
    if (!isLbError(e)) this.#px.onError(e, this.requestId);
    this.#status = err.status;
    sendError(res, err, { 'x-lb-request-id': this.requestId });
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
    if (this.#done) return;
    this.#done = true;
    if (this.#release) {
      const r = this.#release;
      this.#release = undefined;
      r(err);
    }
    const usage = this.#call?.translator?.usage ?? this.#usage();
    if (usage && this.#ctx) this.#ctx.reportUsage(usage);
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
    });
  }

  #usage(): Usage | undefined {
    const last = this.#last;
    if (!last || this.#status >= 300) return undefined;
    let buf = last;
    let at = buf.lastIndexOf('"prompt_tokens"');
    if (at < 0 && this.#prev) {
      buf = Buffer.concat([this.#prev, last]);
      at = buf.lastIndexOf('"prompt_tokens"');
    }
    if (at < 0) return undefined;
    const text = buf.toString('latin1', Math.max(0, at - 64), Math.min(buf.length, at + 160));
    const p = /"prompt_tokens"\s*:\s*(\d+)/.exec(text);
    const c = /"completion_tokens"\s*:\s*(\d+)/.exec(text);
    const t = /"total_tokens"\s*:\s*(\d+)/.exec(text);
    if (!p) return undefined;
    const usage: Usage = { prompt_tokens: Number(p[1]) };
    if (c) usage.completion_tokens = Number(c[1]);
    if (t) usage.total_tokens = Number(t[1]);
    return usage;
  }
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
