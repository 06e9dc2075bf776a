// One client request through the proxy: the state its stages share, and the entry points the server, the body
// reader, undici and the engine call. Each stage lives in its own module and works on this object:
// `read.ts` (the request), `route.ts` (routing, fallbacks, pins, hedging), `attempt.ts` (one upstream attempt),
// `spend.ts` (virtual keys and cost), `respond.ts` (the response to the client), `continue.ts` (stream
// continuation), `outcome.ts` (errors, the end, the record). One object per request: the stages add none.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AttemptContext, Router, Usage } from '@lb/core';
import type { EarlyResponder, Sink, StreamTrail } from '@lb/exchange';
import type { BodySink } from '../http.js';
import { limitHeaders, readBody } from '../http.js';
import { operationOf } from '../operations.js';
import type { Admission, ClientIdentity } from '../spend.js';
import type { UpstreamCall } from '../upstream.js';
import { type Outbound, sendAttempt, type Translated } from './attempt.js';
import { type ClientSignal, clientGone } from './client-signal.js';
import type { ProxyContext } from './context.js';
import { crashed, failWith, finish, upstreamErrorEvent } from './outcome.js';
import { cutForShutdown, respond, sinkData, sinkEnd, sinkError } from './respond.js';
import { route } from './route.js';

const perf = performance;
let seq = 0;
const PREFIX = `${Date.now().toString(36)}${Math.floor(Math.random() * 1296)
  .toString(36)
  .padStart(2, '0')}`;

/** One attempt's state in a hedged exchange (two attempts may run at once): restored from the winner. */
export interface HedgeLeg {
  ctx: AttemptContext;
  dreq: Outbound;
  translated: Translated;
}

/**
 * One client request through the proxy: read, route, attempt with failover, then stream the chosen response to the
 * client. Also the `Sink` the upstream body flows into. Its fields are the stages' shared state (internal to the
 * proxy's modules).
 */
export class Exchange implements Sink, EarlyResponder, BodySink {
  readonly px: ProxyContext;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly path: string;
  readonly client: string | undefined;
  /** Runs when the response closes (the server's in-flight count). */
  readonly done?: () => void;
  readonly t0 = perf.now();
  // Decimal: a small integer's digits come from V8's number-string cache, not a radix conversion in C++.
  readonly requestId = `req_${PREFIX}${++seq}`;

  // ---- the request (read.ts)
  body: Buffer | undefined;
  json: Record<string, any> | undefined;
  /** The body is a JSON object `scanBody` validated: `json` is parsed from it when first needed. */
  lazyJson = false;
  /** The headers forwarded upstream. */
  fwd: Record<string, string> | undefined;
  operation = 'other';
  model: string | undefined;
  stream = false;
  /** The request's own fallback chain (`models: [...]` after the first, `x-lb-fallbacks`). */
  requested: string[] | undefined;
  features: readonly string[] | undefined;
  /** `x-lb-tags` (and the key's tags): only endpoints carrying all of these serve the request. */
  tags: readonly string[] | undefined;
  /** The scan saw a top-level parameter features are read from (`n`, `logprobs`…). */
  featureParams = false;
  /** The scan's completion budget (`max_tokens`… times `n`; 0 when absent), for a token estimate without parsing. */
  completionTokens = 0;
  /** The scan saw a top-level `stream_options` (undefined: the body was not scanned). */
  streamOptions: boolean | undefined;
  /** The client's request limit and what is left of it (`x-ratelimit-*-requests`); -1 when no limit applies. */
  rateLimit = -1;
  rateRemaining = 0;

  // ---- routing (route.ts)
  signal: ClientSignal | undefined;
  /** The router is running the attempts (its `execute` has not returned). */
  routing = false;
  /** The client was answered from `settled`, ahead of the router's bookkeeping. */
  early = false;
  /** The model a fallback moved the request to (the body keeps naming `model`; the dialect splices it in). */
  fallbackTo: string | undefined;
  /** The endpoint this call must go to (`x-lb-endpoint`, or where the object it names lives). */
  pin: { endpointId: string; objectId?: string } | undefined;
  /** The call creates an object: its id is read from the answer and remembered with the endpoint. */
  creates = false;
  /** Hedged: each attempt's own state, by its call (undefined when the request is not hedged). */
  legs: Map<UpstreamCall, HedgeLeg> | undefined;
  /** A hedge answered (`x-lb-hedged: 1`). */
  hedged = false;
  /** The route request, kept for a stream continuation's own routing. */
  routeReq: Parameters<Router['execute']>[0] | undefined;
  attempts = 0;

  // ---- the current attempt (attempt.ts)
  call: UpstreamCall | undefined;
  ctx: AttemptContext | undefined;
  dreq: Outbound | undefined;
  translated: Translated;

  // ---- stream continuation (continue.ts)
  /** What the client got of the stream (only when continuation is on and the request qualifies). */
  trail: StreamTrail | undefined;
  /** A continuation's attempts run: their answer goes into the open client stream, never through `respond`. */
  continuing = false;

  // ---- spend (spend.ts)
  /** The client's key (set by the server before `run`), when the gateway is keyed. */
  who: ClientIdentity | undefined;
  /** Its budget admission, settled from the usage when the request ends. */
  adm: Admission | undefined;
  /** lb asked the upstream for a stream's usage: its usage event is taken out of the client's stream. */
  askedUsage = false;
  usage: Usage | undefined;
  /** The USD of `usage`, priced once for `x-lb-cost` and reused by the settlement (undefined: not priced yet). */
  costUsd: number | undefined;

  // ---- the response (respond.ts)
  status = 0;
  ttfb: number | undefined;
  /** Waiting for the client's `drain`. */
  waiting = false;
  wrote = false;
  /** Non-streaming bodies: the latest chunk, kept back so that the last one leaves with `res.end(chunk)`. */
  lastChunk: Uint8Array | undefined;
  /** A non-streaming 2xx body collected whole so that `x-lb-cost` can go in its headers. */
  costed: Uint8Array[] | undefined;

  // ---- the end (outcome.ts)
  finished = false;

  /** `done` runs when the response closes (the server's in-flight count). */
  constructor(
    px: ProxyContext,
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    client?: string,
    done?: () => void,
  ) {
    this.px = px;
    this.req = req;
    this.res = res;
    this.path = path;
    this.client = client;
    this.done = done;
    // One listener for both: 'close' fires once, so `on` spares the `once` wrapper.
    res.on('close', this.onClose);
  }

  /**
   * Reads the body (when the method has one), routes and sends the request upstream, all in the step the body's last
   * bytes arrive in; answers the client later. Never throws: an unexpected error is logged and answered with a 500.
   */
  run(): void {
    try {
      const req = this.req;
      const method = req.method ?? 'GET';
      this.operation = operationOf(method, this.path);
      if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE')
        readBody(req, this.px.settings.bodyLimitBytes, this);
      else void route(this);
    } catch (e) {
      crashed(this, e);
    }
  }

  /** @internal `BodySink`: the request body is in (null: over the limit). */
  onBody(body: Buffer | null): void {
    if (body === null) {
      const limit = this.px.settings.bodyLimitBytes;
      this.fail(413, `Request body exceeds the limit of ${limit} bytes`, 'request_too_large');
      return;
    }
    if (body.length) this.body = body;
    void route(this);
  }

  /** @internal `BodySink`: the client went away while sending the body. */
  onBodyError(): void {
    this.status = 499;
    this.res.destroy();
    finish(this, undefined, 'client_closed');
  }

  /** @internal `EarlyResponder`: a 2xx settled the current attempt; answer now. */
  settled(call: UpstreamCall): void {
    if (call !== this.call || this.res.destroyed) return;
    this.early = true;
    try {
      respond(this, call);
    } catch (e) {
      crashed(this, e);
    }
  }

  /** @internal The router's attempt callback: one upstream attempt (`attempt.ts`). */
  readonly attempt = (ctx: AttemptContext): Promise<UpstreamCall> => sendAttempt(this, ctx);

  // ---- Sink: the upstream body (`respond.ts`)

  data(chunk: Uint8Array): boolean {
    return sinkData(this, chunk);
  }

  end(): void {
    sinkEnd(this);
  }

  error(err: Error): void {
    sinkError(this, err);
  }

  /** The server is shutting down and cannot wait for this stream any longer (`respond.ts`). */
  cutForShutdown(): void {
    cutForShutdown(this);
  }

  /** Answers with an error of the gateway's own (`outcome.ts`). */
  fail(status: number, message: string, code: string): void {
    failWith(this, status, message, code);
  }

  hasJson(): boolean {
    return this.json !== undefined || this.lazyJson;
  }

  /**
   * The client limit's `x-ratelimit-*-requests` headers added to `h` (a response's own headers, so that `writeHead`
   * keeps its fast path: no `setHeader` before it); `h`, or undefined when no limit applies and `h` was not given.
   */
  rateHeaders(h?: OutgoingHttpHeaders): OutgoingHttpHeaders | undefined {
    return this.rateLimit < 0 ? h : limitHeaders(this.rateLimit, this.rateRemaining, h);
  }

  /** @internal The body as an object (parsed on first use when only scanned). */
  jsonOf(): Record<string, any> | undefined {
    if (this.json === undefined && this.lazyJson) {
      this.lazyJson = false;
      this.json = JSON.parse(this.body!.toString('utf8')) as Record<string, any>;
    }
    return this.json;
  }

  readonly onClose = (): void => {
    this.done?.();
    if (this.res.writableFinished) return;
    // A client that left at the upstream's error event (the SDK raises it and hangs up) leaves a broken stream: the
    // endpoint failed first, so its attempt ends as one before the abort would count it as the caller's doing.
    if (this.call?.upstreamError) finish(this, upstreamErrorEvent(), 'upstream_stream_error');
    const reason = clientGone();
    this.signal?.abort(reason);
    this.call?.abort(reason);
  };
}
