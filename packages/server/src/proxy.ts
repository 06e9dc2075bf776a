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
  type AffinityStore,
  type AttemptSettings,
  askForUsage,
  attemptTimeout,
  BodyCollector,
  CreatedIdTap,
  continuable,
  continuationBody,
  continuationRequest,
  createsObject,
  dropAskedUsage,
  FALLBACK_BODY_LIMIT,
  FALLBACK_HEADER,
  type FallbackConfig,
  FallbackRun,
  fallbackCauseOf,
  fallbackCauseOfError,
  HEDGED_HEADER,
  type HedgeRunOptions,
  type Hedger,
  type HoldBudget,
  hedgeSafe,
  isObjectRoute,
  objectIdsIn,
  parseFallbackList,
  pinnedEndpoint,
  pinnedUnavailable,
  prefixCut,
  prepareUpstream,
  rememberObject,
  type Sink,
  StreamOpenError,
  StreamTrail,
  sseError,
  type Transport,
  tagResponse,
} from '@lb/exchange';
import { type Dialect, type DialectRequest, openaiDialect } from '@lb/providers';
import { usageFromBytes } from '@lb/providers/internal';
import type { VirtualKey } from '@lb/spend';
import type { Agent } from 'undici';
import { asLbError, readBody, sendError, sendStatus, upstreamHeaders } from './http.js';
import type { ClientRequestRecord } from './observability/index.js';
import { JSON_OPERATIONS, MODEL_OPERATIONS, multipartField, operationOf } from './operations.js';
import type { ServerSettings } from './options.js';
import type { Redactor } from './redact.js';
import { scanBody } from './scan.js';
import {
  type Admission,
  type ClientIdentity,
  COST_HEADER,
  costText,
  spendRefusal,
  type Wallet,
} from './spend.js';
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
  /** Where objects' endpoints are remembered (files, batches, stored responses…): memory, or Redis. */
  affinity?: AffinityStore;
  /** Model fallback chains (`[fallbacks]`, `LB_*FALLBACKS`); undefined when none are configured. */
  fallbacks?: FallbackConfig;
  /** Hedged requests (`@lb/exchange`'s `hedge.ts`), when the config turns them on anywhere. */
  hedger?: Hedger;
  /** Stream continuation (`stream_continue`, `LB_STREAM_CONTINUE`; `@lb/exchange`'s `continue.ts`). */
  streamContinue?: boolean;
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
  /** The streams being written to clients now: a shutdown that cannot wait for them ends each with an SSE error. */
  streams: Set<Exchange>;
  /** OpenTelemetry (`@lb/otel`), when `@opentelemetry/api` is installed: the client's trace context in, each attempt's out. */
  trace?: TraceHooks;
  /** Virtual keys, budgets and cost (`spend.ts`): admission before routing, cost and settlement after. */
  wallet?: Wallet;
  /** Streams ask the upstream for their usage when the client did not (false while an Azure endpoint is pooled). */
  askUsage?: boolean;
  /** Token estimate of a body for a key's budget admission (`@lb/ratelimit`'s `estimateTokens`). */
  estimateTokens?: (json: Record<string, any>) => number;
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
      maxStreamDurationMs: s.maxStreamDurationMs,
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
/** Hedged runs: a call that answered after the other won is aborted and its hold let go (as an abort: no failure). */
const HEDGE_OPTIONS: HedgeRunOptions<UpstreamCall> = {
  ...EXECUTE_OPTIONS,
  cancel: (c, reason) => {
    c.abort(reason);
    c.dump();
    const release = c.release;
    if (release) {
      c.release = undefined;
      release(reason);
    }
  },
};

/** One attempt's state in a hedged exchange (two attempts may run at once): restored from the winner. */
interface HedgeLeg {
  ctx: AttemptContext;
  dreq: DialectRequestLike;
  translated: Translated;
}

/** A non-streaming answer the dialect rewrites whole: its chunks, collected. */
type Translated = { dialect: DialectLike; chunks: Uint8Array[]; usage?: Usage } | undefined;

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
  /** The model a fallback moved the request to (the body keeps naming `#model`; the dialect splices it in). */
  #fallbackTo: string | undefined;
  /** The endpoint this call must go to (`x-lb-endpoint`, or where the object it names lives). */
  #pin: { endpointId: string; objectId?: string } | undefined;
  /** The call creates an object: its id is read from the answer and remembered with the endpoint. */
  #creates = false;
  /** The request's own fallback chain (`models: [...]` after the first, `x-lb-fallbacks`). */
  #requested: string[] | undefined;
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
  #translated: Translated;
  #dreq: DialectRequestLike | undefined;
  /** Hedged: each attempt's own state, by its call (undefined when the request is not hedged). */
  #legs: Map<UpstreamCall, HedgeLeg> | undefined;
  /** A hedge answered (`x-lb-hedged: 1`). */
  #hedged = false;
  /** Stream continuation: what the client got of the stream (only when on and the request qualifies). */
  #trail: StreamTrail | undefined;
  /** A continuation's attempts run: their answer goes into the open client stream, never through `#respond`. */
  #continuing = false;
  #routeReq: Parameters<Router['execute']>[0] | undefined;
  /** The client's key (set by the server before `run`), when the gateway is keyed. */
  who: ClientIdentity | undefined;
  /** Its budget admission, settled from the usage when the request ends. */
  #adm: Admission | undefined;
  /** lb asked the upstream for a stream's usage: its usage event is taken out of the client's stream. */
  #askedUsage = false;
  /** A non-streaming 2xx body held whole so that `x-lb-cost` can go in its headers. */
  #costed: Uint8Array[] | undefined;
  #usage: Usage | undefined;

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
            let j = parsed as Record<string, any>;
            if (j.models !== undefined) {
              // OpenRouter's `models: [...]`: the first is the primary, the rest a fallback chain; never forwarded.
              const list = Array.isArray(j.models) ? parseFallbackList(j.models) : undefined;
              if (list === undefined) {
                this.#fail(400, '"models" must be a non-empty list of model names', 'invalid_models');
                return;
              }
              const { models: _, ...rest } = j;
              if (typeof rest.model !== 'string') rest.model = list[0];
              j = rest;
              this.#requested = list.filter((m) => m !== rest.model);
              this.#body = Buffer.from(JSON.stringify(j));
            }
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
      } else if (
        JSON_OPERATIONS.has(this.#operation) &&
        req.method === 'POST' &&
        // An action on an object (`POST /batches/{id}/cancel`) takes no body.
        objectIdsIn(this.#path, undefined).length === 0
      ) {
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
      const fb = req.headers['x-lb-fallbacks'];
      if (fb !== undefined) {
        const list = parseFallbackList(fb);
        if (list !== undefined) this.#requested = [...(this.#requested ?? []), ...list];
      }
      const tags = req.headers['x-lb-tags'];
      if (tags !== undefined) this.#tags = parseTags(tags);
      if (px.wallet !== undefined) {
        // Synchronous (no await, the upstream request leaves in this step) unless a budget lives in Redis.
        const ok = this.#spendIn(px.wallet);
        if (ok === false || (ok !== true && !(await ok))) return;
      }
      const signal = new ClientSignal();
      this.#signal = signal;
      if (res.destroyed) signal.abort(clientGone());
      // A scanned body with none of the parameters features are read from asks for none: no parse.
      if (px.features !== undefined && (this.#json !== undefined || (this.#lazyJson && this.#featureParams)))
        this.#features = px.features(this.#operation, this.jsonOf()!);
      // Objects live where they were created: only object routes (and `x-lb-endpoint`) pay for the look-up.
      const pinHeader = req.headers['x-lb-endpoint'];
      if (pinHeader !== undefined || isObjectRoute(this.#path)) {
        try {
          this.#pin = await pinnedEndpoint(
            px.router,
            px.affinity,
            typeof pinHeader === 'string' ? pinHeader : undefined,
            this.#path,
            this.#hasJson() ? () => this.jsonOf() : undefined,
          );
        } catch (e) {
          return this.#failed(e);
        }
        this.#creates =
          px.affinity !== undefined &&
          createsObject(req.method ?? 'GET', this.#path, this.#hasJson() ? this.jsonOf() : undefined);
      }
      let call: UpstreamCall;
      px.trace?.continueFrom(this.requestId, req.headers, this.#operation);
      let run: FallbackRun | undefined;
      for (;;) {
        this.#routing = true;
        try {
          const routeReq = {
            model: this.#fallbackTo ?? this.#model,
            requestId: this.requestId,
            signal: signal as unknown as AbortSignal,
            operation: this.#operation,
            client: this.#client,
            features: this.#features,
            tags: this.#tags,
            estimatedTokens:
              px.estimate !== undefined && this.#hasJson() ? px.estimate(this.jsonOf()!) : undefined,
            deadlineMs: run?.deadlineMs(),
            endpoint: this.#pin?.endpointId,
          };
          if (px.streamContinue === true && this.#stream && continuable(this.#operation, this.jsonOf())) {
            this.#trail = new StreamTrail();
            this.#routeReq = routeReq;
          }
          const hedging = px.hedger === undefined ? undefined : this.#hedging(px.hedger, routeReq.model);
          if (hedging !== undefined) call = await this.#runHedged(px.hedger!, hedging, routeReq);
          else call = await px.router.execute(routeReq, this.#attempt, EXECUTE_OPTIONS);
        } catch (e) {
          this.#routing = false;
          // Answered already: only a listener throwing in the router's bookkeeping gets here.
          if (this.#early) return px.onError(e, this.requestId);
          const pin = this.#pin;
          if (pin !== undefined && isNoHealthyEndpointError(e) && !this.#signal?.aborted) {
            if (e.lastValue instanceof UpstreamCall) e.lastValue.dump();
            return this.#failed(pinnedUnavailable(px.router, pin.endpointId, pin.objectId, e));
          }
          const cause = this.#canFallBack() ? fallbackCauseOfError(e) : undefined;
          if (cause !== undefined && this.#fallBack((run ??= this.#fallbackRun()), cause)) {
            if (isNoHealthyEndpointError(e) && e.lastValue instanceof UpstreamCall) e.lastValue.dump();
            continue;
          }
          return this.#failed(e);
        }
        this.#routing = false;
        if (this.#early) return;
        // A client error some fallback chain could fix (context length, content policy, an unknown model): read its
        // (small) body for the cause. Only 4xx answers, only while a chain applies, only up to 64 KiB.
        const st = call.status;
        if (st >= 400 && st < 500 && !call.isStream && this.#canFallBack()) {
          run ??= this.#fallbackRun();
          const len = Number(call.headers['content-length']);
          if (run.wantsBody(st) && len >= 0 && len <= FALLBACK_BODY_LIMIT) {
            const col = new BodyCollector();
            this.#call = call;
            call.attach(col);
            try {
              await col.done;
            } catch (e) {
              return this.#failed(e);
            }
            const bytes = col.bytes();
            const cause = fallbackCauseOf(
              st,
              Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString(),
            );
            if (cause !== undefined && this.#fallBack(run, cause)) continue;
            return this.#replay(call, bytes);
          }
        }
        break;
      }
      this.#respond(call);
    } catch (e) {
      this.#crashed(e);
    }
  }

  /** A chain may apply: a model was named and fallbacks are configured or asked for, and the client is still there. */
  #canFallBack(): boolean {
    return (
      (this.#px.fallbacks !== undefined || this.#requested !== undefined) &&
      this.#model !== undefined &&
      this.#pin === undefined &&
      this.#signal?.aborted !== true &&
      !this.#res.destroyed
    );
  }

  #fallbackRun(): FallbackRun {
    const deadline = this.#px.router.config.deadlineMs ?? 120_000;
    return new FallbackRun(
      this.#model!,
      this.#px.fallbacks,
      this.#requested,
      deadline - (perf.now() - this.#t0),
    );
  }

  /** Moves to the next model of the chain for `cause`; false when there is none. */
  #fallBack(run: FallbackRun, cause: 'context_window' | 'content_policy' | 'default'): boolean {
    const to = run.next(cause, this.#px.router, this.requestId);
    if (to === undefined) return false;
    this.#fallbackTo = to;
    this.#call = undefined;
    this.#ctx = undefined;
    return true;
  }

  /** Answers with a client error whose body was read whole (to look for a fallback cause). */
  #replay(call: UpstreamCall, body: Uint8Array): void {
    const res = this.#res;
    this.#call = call;
    this.#status = call.status;
    if (res.destroyed) {
      this.#finish(undefined, 'client_closed');
      return;
    }
    const rd = this.#px.redactor;
    const sink = rd.sink(this);
    if (!this.#translated)
      res.writeHead(call.status, this.#tagged(rd.headers(call.headers, true, call.status)));
    if (body.length) sink.data(body);
    sink.end();
  }

  /** The request's hedging: its route has hedging on and it is safe to send twice (or the route opts in). */
  #hedging(hedger: Hedger, model: string | undefined): ReturnType<Hedger['routeOf']> {
    const route = hedger.routeOf(model, true);
    if (route === undefined || route.unsafe) return route;
    const method = this.#req.method ?? 'GET';
    // Only a body that may ask to store (`store`) is parsed, and only for a route with hedging on.
    const json = this.#hasJson() ? this.jsonOf() : undefined;
    return hedgeSafe(this.#operation, method, this.#path, json) ? route : undefined;
  }

  /** Hedged: the attempts keep their own state; the winner's becomes the exchange's. */
  async #runHedged(
    hedger: Hedger,
    route: NonNullable<ReturnType<Hedger['routeOf']>>,
    routeReq: Parameters<Router['execute']>[0],
  ): Promise<UpstreamCall> {
    const legs = new Map<UpstreamCall, HedgeLeg>();
    this.#legs = legs;
    const r = await hedger.run(route, routeReq, this.#attempt, HEDGE_OPTIONS);
    const call = r.value;
    const leg = legs.get(call);
    this.#legs = undefined;
    if (leg !== undefined) {
      this.#ctx = leg.ctx;
      this.#dreq = leg.dreq;
      this.#translated = leg.translated;
      this.#attempts = leg.ctx.attempt;
    }
    this.#call = call;
    this.#hedged = r.hedged;
    return call;
  }

  /**
   * Spend before routing: the key's expiry, model and budgets (false: refused and answered), its tags, and for a
   * stream, the upstream asked for usage when the client did not (`spend-hooks`: `askForUsage`).
   */
  #spendIn(wallet: Wallet): boolean | Promise<boolean> {
    const who = this.who;
    if (who !== undefined) {
      const key = who.key;
      const est =
        key.hasBudget && this.#hasJson() && this.#px.estimateTokens
          ? this.#px.estimateTokens(this.jsonOf()!)
          : 0;
      let a: ReturnType<Wallet['admit']>;
      try {
        a = wallet.admit(key, this.#model, est);
      } catch (e) {
        return this.#refused(e);
      }
      if (a instanceof Promise)
        return a.then(
          (adm) => {
            this.#adm = adm;
            return this.#spendOn(key);
          },
          (e: unknown) => this.#refused(e),
        );
      this.#adm = a;
      return this.#spendOn(key);
    }
    return this.#spendOn(undefined);
  }

  /** A spend refusal answered (401 / 403 / 429); any other error thrown on. */
  #refused(e: unknown): false {
    const err = spendRefusal(e);
    if (err === undefined) throw e;
    this.#status = err.status;
    sendError(this.#res, err);
    this.#finish(undefined, err.code);
    return false;
  }

  /** After admission: the key's tags, and a stream's usage asked for. */
  #spendOn(key: VirtualKey | undefined): true {
    if (key !== undefined && key.tags.length)
      this.#tags = this.#tags ? [...key.tags, ...this.#tags] : key.tags;
    const body = this.#body;
    if (
      this.#px.askUsage &&
      this.#stream &&
      body !== undefined &&
      (this.#operation === 'chat.completions' || this.#operation === 'completions')
    ) {
      const asked = askForUsage(body, this.#json);
      if (asked !== undefined) {
        this.#askedUsage = true;
        this.#body = Buffer.from(asked.body.buffer, asked.body.byteOffset, asked.body.length);
        this.#json = asked.json;
        if (asked.json === undefined) this.#lazyJson = true;
      }
    }
    return true;
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
    // A provider no dialect is registered for is spoken to as OpenAI-compatible (as it always was).
    const dialect = px.dialect(ep.provider) ?? openaiDialect;
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
    const legs = this.#legs;
    // Hedged: two attempts may run at once; the router's result (not the first to settle) picks the answer.
    if (legs !== undefined) legs.set(call, { ctx, dreq, translated: this.#translated });
    else if (!this.#continuing) call.early = this;
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
    const ok = call.status >= 200 && call.status < 300;
    let sink: Sink = ok ? this : rd.sink(this);
    const store = this.#px.affinity;
    if (ok && store !== undefined && this.#ctx !== undefined) {
      const ep = this.#ctx.endpoint.id;
      if (this.#creates) sink = new CreatedIdTap(sink, (id) => void rememberObject(store, id, ep));
      else if (this.#req.method === 'DELETE') {
        // The object the path ends with is gone (not its parent: DELETE /threads/{t}/messages/{m} keeps the thread).
        const id = objectIdsIn(this.#path, undefined).at(-1);
        if (id !== undefined && this.#path.split('?')[0].endsWith(id)) void store.delete(id);
      }
    }
    if (this.#translated) {
      // The dialect rewrites whole bodies: collect, then translate in `end`.
      call.attach(sink);
      return;
    }
    if (
      this.#px.wallet !== undefined &&
      !call.isStream &&
      sink === this &&
      this.#px.settings.responseHeaders
    ) {
      // `x-lb-cost` goes in the headers: the body (usage at its end) is held whole, then sent in one write.
      this.#costed = [];
      call.attach(sink);
      return;
    }
    res.writeHead(call.status, this.#tagged(rd.headers(call.headers, !call.isStream, call.status)));
    call.attach(sink);
    if (call.isStream) this.#px.streams.add(this);
    // A stream's headers leave with its first event (held back by the gate, written by `attach`) in one write;
    // alone only when no event came yet.
    if (call.isStream && !this.#wrote && !res.writableEnded) res.flushHeaders();
  }

  /** Adds the gateway's own response headers (`responseHeaders`): who answered, after how many attempts. */
  #tagged(h: OutgoingHttpHeaders): OutgoingHttpHeaders {
    if (this.#px.settings.responseHeaders) tagResponse(h, this.#ctx!);
    if (this.#fallbackTo !== undefined) h[FALLBACK_HEADER] = this.#fallbackTo;
    if (this.#hedged) h[HEDGED_HEADER] = '1';
    return h;
  }

  // ---------------------------------------------------------------- Sink

  data(chunk: Uint8Array): boolean {
    if (this.#ttfb === undefined) this.#ttfb = perf.now() - this.#t0;
    if (this.#translated) {
      this.#translated.chunks.push(chunk);
      return true;
    }
    if (this.#costed !== undefined) {
      this.#costed.push(chunk);
      return true;
    }
    // Streams come as whole events (the engine frames them), written as they come.
    if (this.#call!.isStream) {
      const c = this.#askedUsage ? dropAskedUsage(chunk) : chunk;
      return this.#write(this.#trail === undefined ? c : this.#trail.pass(c));
    }
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
      if (tr.usage && this.#px.wallet) this.#costHeader(h, tr.usage);
      res.writeHead(out.status, h);
      res.end(buf);
      this.#finish(undefined);
      return;
    }
    const costed = this.#costed;
    if (costed !== undefined) {
      const call = this.#call!;
      const buf = costed.length === 1 ? costed[0] : Buffer.concat(costed);
      this.#costed = undefined;
      const h = this.#tagged(this.#px.redactor.headers(call.headers, true, call.status));
      const usage = call.upstreamError ? undefined : usageFromBytes(buf);
      if (usage) this.#costHeader(h, usage);
      res.writeHead(call.status, h);
      this.#wrote = true;
      res.end(buf);
      this.#finish(call.upstreamError ? upstreamErrorEvent() : undefined);
      return;
    }
    const held = this.#held;
    if (held !== undefined) {
      this.#held = undefined;
      res.end(held);
    } else res.end();
    this.#finish(this.#call?.upstreamError ? upstreamErrorEvent() : undefined);
  }

  /** `x-lb-cost` from a whole body's usage (absent when the model has no price: unknown, never 0). */
  #costHeader(h: OutgoingHttpHeaders, usage: Usage): void {
    this.#usage = usage;
    const usd = this.#px.wallet!.prices.costOf(usage, this.#answeredModel(usage), this.#ctx?.endpoint);
    if (usd !== undefined) h[COST_HEADER] = costText(usd);
  }

  /** The model priced: the route's upstream model, else the one asked for. */
  #answeredModel(_usage?: Usage): string | undefined {
    return this.#ctx?.upstreamModel ?? this.#model;
  }

  error(err: Error): void {
    const res = this.#res;
    const gone = this.#signal?.aborted === true;
    if (this.#costed !== undefined) {
      this.#costed = undefined;
      if (!gone && !res.headersSent) {
        sendStatus(res, 502, `Upstream response broke off: ${err.message}`);
        this.#status = 502;
      } else res.destroy();
      this.#finish(err, gone ? 'client_closed' : 'upstream_stream_error');
      return;
    }
    if (this.#trail?.canContinue && !gone && !res.destroyed && !res.writableEnded && this.#call?.isStream) {
      void this.#continue(err);
      return;
    }
    if (res.writableEnded) {
      // Already ended by this server (a shutdown's SSE error event): nothing more to say.
    } else if (!gone && this.#call?.isStream && !res.destroyed && !this.#translated) {
      res.end(streamEnding(err, this.#px.settings.streamIdleTimeoutMs));
    } else if (this.#translated && !res.headersSent && !gone) {
      sendStatus(res, 502, `Upstream response broke off: ${err.message}`);
      this.#status = 502;
    } else {
      res.destroy();
    }
    this.#finish(err, gone ? 'client_closed' : 'upstream_stream_error');
  }

  /**
   * The server is shutting down and cannot wait for this stream any longer: it ends with an SSE error event (the
   * client's SDK raises it, rather than seeing a cut connection), and the upstream request is aborted.
   */
  cutForShutdown(): void {
    const res = this.#res;
    if (!res.destroyed && !res.writableEnded)
      res.end(
        sseError(
          'The gateway is shutting down and ended this stream; retry the request',
          'server_error',
          'server_shutting_down',
        ),
      );
    this.#call?.abort(new Error('server shutting down'));
  }

  /**
   * Stream continuation: the stream broke after content; the conversation goes to another endpoint with the partial
   * answer as an assistant prefix, and its stream continues the client's. When that fails, the client's stream ends
   * with the original break.
   */
  async #continue(err: Error): Promise<void> {
    const px = this.#px;
    const trail = this.#trail!;
    const broken = this.#call!;
    const from = this.#ctx!.endpoint.id;
    // The break counts for its endpoint as any break does (stream probation).
    const release = broken.release;
    if (release) {
      broken.release = undefined;
      release(err);
    }
    const json = this.jsonOf()!;
    const prefix = trail.text;
    trail.begin(from);
    this.#continuing = true;
    try {
      const call = await px.router.execute(
        continuationRequest(px.router, this.#routeReq!, from),
        (ctx) => {
          const body = continuationBody(json, prefix, ctx.endpoint.provider);
          trail.skip = prefixCut(prefix, ctx.endpoint.provider);
          this.#json = body;
          this.#lazyJson = false;
          this.#body = Buffer.from(JSON.stringify(body));
          return this.#attempt(ctx);
        },
        EXECUTE_OPTIONS,
      );
      if (call.status >= 300 || !call.isStream) {
        call.dump();
        throw err;
      }
      px.router.publishContinue({
        requestId: this.requestId,
        model: this.#fallbackTo ?? this.#model,
        fromEndpointId: from,
        endpointId: this.#ctx!.endpoint.id,
        prefixChars: prefix.length,
      });
      this.#call = call;
      call.attach(this);
    } catch {
      trail.ok = false;
      this.error(err);
    }
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
    if (this.#call?.isStream) this.#px.streams.delete(this);
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
    const usage = this.#translated?.usage ?? this.#usage ?? (this.#status < 300 ? call?.usage() : undefined);
    const wallet = this.#px.wallet;
    const costUsd =
      wallet === undefined
        ? undefined
        : wallet.settle(this.who?.key, this.#adm, usage, this.#answeredModel(), this.#ctx?.endpoint);
    if (usage && this.#ctx) this.#ctx.reportUsage(usage, costUsd);
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
      costUsd,
      key: this.who?.key.name,
      upstreamRequestId: upstreamId === undefined ? undefined : this.#px.redactor.text(upstreamId),
      clientRequestId: clientId === undefined ? undefined : headerText(clientId),
    });
  }
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
