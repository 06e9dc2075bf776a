import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { Agent as AgentType, Dispatcher } from 'undici';
import { gate, hasErrorEvent, PASS, quickPass } from './sse.js';

// The modules themselves, not the package index (see undici-parts.d.ts), and required rather than imported: an ESM
// import of a CommonJS module has Node's loader lex its source for export names, and lexing undici's util.js got
// the lexer optimised by TurboFan on a background thread whose malloc arena (~3 MB) then stays in the process.
const requireCjs = createRequire(import.meta.url);
const Agent = requireCjs('undici/lib/dispatcher/agent.js') as typeof import('undici/lib/dispatcher/agent.js');
const { parseHeaders } = requireCjs('undici/lib/core/util.js') as typeof import('undici/lib/core/util.js');
// undici's own timers: above a second, one shared coarse tick (±0.5 s) instead of a Node timer per stream.
const timers = requireCjs('undici/lib/util/timers.js') as typeof import('undici/lib/util/timers.js');

/** Where an upstream response's body goes once the attempt is settled. `data` returns false to pause the upstream. */
export interface Sink {
  data(chunk: Buffer): boolean;
  end(): void;
  error(err: Error): void;
}

/** Turns upstream SSE text into OpenAI SSE text (a provider dialect's stream translator). */
export interface TextTranslator {
  push(text: string): string;
  end(): string;
  /** Set once the upstream sent an error event (a failed attempt when nothing reached the client yet). */
  readonly error?: { status: number; type: string; message: string } | undefined;
  readonly usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | undefined;
}

/** The stream opened with an error event: a failed attempt (classified by `status`) that may fail over. */
export class StreamOpenError extends Error {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly type: string;
  constructor(status: number, message: string, type: string, headers: IncomingHttpHeaders) {
    super(`stream opened with an error event: ${message}`);
    this.name = 'StreamOpenError';
    this.status = status;
    this.type = type;
    this.headers = headers;
  }
}

/** A stream produced no content within the first-byte timeout. Classified as a timeout. */
export class FirstByteTimeoutError extends Error {
  readonly code = 'UND_ERR_HEADERS_TIMEOUT';
  constructor(ms: number) {
    super(`no stream content within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** What a stream attempt holds while it is served (`AttemptContext` of `@lb/core`). */
export interface StreamHolder {
  hold(): (err?: unknown) => void;
  /** The endpoint: its held streams are let go together when its probation ends ({@link HoldBudget.release}). */
  readonly endpoint?: { readonly id: string };
}

/** A stream held for probation goes live past this many bytes (a bound on what one held stream keeps in memory). */
export const HOLD_MAX_BYTES = 512 * 1024;

/**
 * The streams one server holds for probation. What they keep in memory together is bounded: a stream whose next
 * chunk would take `used` past `max` goes live instead, so that an outage putting many endpoints on probation at
 * once cannot grow the process without bound. When an endpoint's probation ends, its held streams go live together
 * (`release`): the endpoint has just served a stream cleanly.
 */
export class HoldBudget {
  used = 0;
  readonly #calls = new Map<string, Set<UpstreamCall>>();
  constructor(readonly max: number) {}

  /** @internal A call began holding a stream of `endpointId`. */
  add(endpointId: string, call: UpstreamCall): void {
    let set = this.#calls.get(endpointId);
    if (set === undefined) this.#calls.set(endpointId, (set = new Set()));
    set.add(call);
  }

  /** @internal The call stopped holding. */
  delete(endpointId: string, call: UpstreamCall): void {
    const set = this.#calls.get(endpointId);
    if (set?.delete(call) && set.size === 0) this.#calls.delete(endpointId);
  }

  /** The endpoint's probation ended: the streams still held from it go live. */
  release(endpointId: string): void {
    const set = this.#calls.get(endpointId);
    if (set !== undefined) for (const call of [...set]) call.letGo();
  }
}

const EMPTY: IncomingHttpHeaders = Object.freeze({}) as IncomingHttpHeaders;
const ST_OPEN = 0;
const ST_ENDED = 1;
const ST_FAILED = 2;

/** Told, synchronously, when a 2xx response settles an attempt (which the router is sure to count a success). */
export interface EarlyResponder {
  settled(call: UpstreamCall): void;
}

/**
 * One upstream HTTP exchange, as an undici dispatch handler. `promise` settles when the attempt can be judged: at
 * the response headers, or — for a 2xx event stream with `gateStream` — at the first event with content. The body
 * then flows into the `Sink` given to `attach`, chunk by chunk, with back-pressure; chunks that arrive before
 * (the gated preamble) are buffered and flushed first.
 *
 * It implements undici's native handler interface (`onConnect`/`onHeaders`/`onData`/`onComplete`/`onError`):
 * the controller-style one costs a wrapper, a controller and a parse of the (absent) trailers per request.
 */
export class UpstreamCall implements Dispatcher.DispatchHandler {
  status = 0;
  headers: IncomingHttpHeaders = EMPTY;
  /** True when the response is a 2xx event stream. */
  isStream = false;
  readonly promise: Promise<UpstreamCall>;
  #resolve!: (v: UpstreamCall) => void;
  #reject!: (e: unknown) => void;
  #settled = false;
  #abort: ((err: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #paused = false;
  #abortReason: Error | undefined;
  #gating = false;
  /** Probation: the stream passed the gate and is held back whole (see `holdMs`). */
  #holding = false;
  #heldBytes = 0;
  #gateText = '';
  #buffered: Buffer[] | undefined;
  #sink: Sink | undefined;
  #state = ST_OPEN;
  #error: Error | undefined;
  #timer: import('undici/lib/util/timers.js').Timer | undefined;
  readonly #gateStream: boolean;
  /** How long a gated stream may take to its first content event, from the dispatch. */
  readonly firstByteTimeoutMs: number;
  /**
   * > 0: the endpoint is on stream probation (`AttemptContext.streamProbation`), so a 2xx stream is held back whole
   * until it ends, and a break or an error event before then fails the attempt (which may fail over) instead of
   * reaching the client. The hold lets go (the stream goes live) after this many ms or `HOLD_MAX_BYTES`.
   */
  readonly holdMs: number;
  readonly #translator: TextTranslator | undefined;
  readonly #holder: StreamHolder | undefined;
  readonly #budget: HoldBudget | undefined;
  /** The endpoint whose stream this call holds (registered with the budget while it holds). */
  #holdId: string | undefined;
  /** Set when a 2xx stream settled the attempt: ends the router's hold on the endpoint (see `AttemptContext.hold`). */
  release: ((err?: unknown) => void) | undefined;
  /**
   * Answers the client as soon as a 2xx settles the attempt, in the same step, rather than after the router's
   * bookkeeping and two promise hops: a 2xx is a success whatever the router then records.
   */
  early: EarlyResponder | undefined = undefined;

  /** The stream translator, when a dialect translates this stream. */
  get translator(): TextTranslator | undefined {
    return this.#translator;
  }

  /**
   * `holder`: for stream requests, the attempt whose endpoint stays held while a stream is served. `budget`: what
   * held streams may keep together (with `holdMs` > 0).
   */
  constructor(
    gateStream: boolean,
    firstByteTimeoutMs: number,
    translator?: TextTranslator,
    holder?: StreamHolder,
    holdMs = 0,
    budget?: HoldBudget,
  ) {
    this.#gateStream = gateStream;
    this.firstByteTimeoutMs = firstByteTimeoutMs;
    this.holdMs = gateStream ? holdMs : 0;
    this.#translator = translator;
    this.#holder = holder;
    this.#budget = budget;
    this.promise = new Promise<UpstreamCall>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (gateStream) {
      this.#timer = timers.setTimeout(onFirstByteTimeout, firstByteTimeoutMs, this);
    }
  }

  /** True once the whole body arrived (the sink may still be catching up with buffered chunks). */
  get ended(): boolean {
    return this.#state === ST_ENDED;
  }

  /** Aborts the exchange (client went away, timeout). Safe to call at any time, more than once. */
  abort(reason: Error): void {
    if (this.#abortReason || this.#state !== ST_OPEN) return;
    this.#abortReason = reason;
    if (this.#abort) this.#abort(reason);
    else this.#fail(reason);
  }

  /** Sends the body (buffered chunks first) to `sink`. */
  attach(sink: Sink): void {
    this.#sink = sink;
    const buf = this.#buffered;
    this.#buffered = undefined;
    if (buf) for (const c of buf) sink.data(c);
    if (this.#state === ST_ENDED) this.#finish();
    else if (this.#state === ST_FAILED) sink.error(this.#error!);
    else this.resume();
  }

  /** Resumes a paused upstream (the client drained). */
  resume(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#resume?.();
    }
  }

  /** Drops the body (a failed attempt's response). */
  dump(): void {
    this.#buffered = undefined;
    if (this.#state !== ST_OPEN) return;
    this.#sink = DUMP;
    this.resume();
  }

  // ---------------------------------------------------------------- undici handler

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#abortReason) abort(this.#abortReason);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true;
    this.#resume = resume;
    this.status = statusCode;
    const headers = parseHeaders(rawHeaders) as IncomingHttpHeaders;
    this.headers = headers;
    const ct = headers['content-type'];
    this.isStream =
      statusCode >= 200 && statusCode < 300 && typeof ct === 'string' && ct.startsWith('text/event-stream');
    if (this.isStream && this.#gateStream) {
      this.#gating = true;
      return true;
    }
    this.#clearTimer();
    this.#settle();
    if (!this.#sink) this.#paused = true;
    return !this.#paused;
  }

  onData(chunk: Buffer): boolean {
    const tr = this.#translator;
    if (tr && this.isStream) {
      const out = tr.push(chunk.toString('utf8'));
      const fail = this.#gating || this.#holding ? tr.error : undefined;
      if (fail) {
        this.#gating = false;
        this.#unhold();
        this.#clearTimer();
        this.#buffered = undefined;
        const err = new StreamOpenError(fail.status, fail.message, fail.type, this.headers);
        this.#abortReason = err;
        this.#abort?.(err);
        return true;
      }
      if (out === '') return true;
      chunk = Buffer.from(out, 'utf8');
    }
    if (this.#gating) {
      (this.#buffered ??= []).push(chunk);
      // The usual first event (content) is judged from its bytes; the rest is decoded and parsed.
      const v =
        this.#gateText === '' && quickPass(chunk) ? PASS : gate((this.#gateText += chunk.toString('utf8')));
      if (v.kind === 'wait') return true;
      this.#gating = false;
      this.#gateText = '';
      this.#clearTimer();
      if (v.kind === 'error') {
        this.#buffered = undefined;
        const err = new StreamOpenError(v.status, v.message, v.type, this.headers);
        this.#abortReason = err;
        this.#abort?.(err);
        return true;
      }
      if (this.holdMs > 0) {
        this.#holding = true;
        const id = this.#holder?.endpoint?.id;
        if (id !== undefined && this.#budget !== undefined) {
          this.#holdId = id;
          this.#budget.add(id, this);
        }
        this.#timer = timers.setTimeout(onHoldTimeout, this.holdMs, this);
        return this.#hold(chunk, false);
      }
      this.#settle();
      if (!this.#sink) this.#paused = true;
      return !this.#paused;
    }
    if (this.#holding) return this.#hold(chunk, true);
    const sink = this.#sink;
    if (sink) {
      if (!sink.data(chunk)) this.#paused = true;
    } else {
      (this.#buffered ??= []).push(chunk);
      this.#paused = true;
    }
    return !this.#paused;
  }

  onComplete(): void {
    this.#clearTimer();
    if (this.#translator && this.isStream) {
      const tail = this.#translator.end();
      if (tail !== '') (this.#buffered ??= []).push(Buffer.from(tail, 'utf8'));
    }
    this.#state = ST_ENDED;
    if (this.#gating || this.#holding) {
      // Ended before any content (an empty answer is an answer), or a held stream ended whole: pass it on.
      this.#gating = false;
      this.#unhold();
      this.#settle();
      return;
    }
    if (this.#sink) this.#finish();
  }

  onError(error: Error): void {
    this.#fail(this.#abortReason ?? error);
  }

  /** Probation: keeps a chunk of a held stream (`push` false: the gate has buffered it already). */
  #hold(chunk: Buffer, push: boolean): boolean {
    if (push) this.#buffered!.push(chunk);
    if (hasErrorEvent(chunk)) {
      this.#unhold();
      this.#clearTimer();
      this.#buffered = undefined;
      const err = new StreamOpenError(
        502,
        'the stream sent an error event',
        'upstream_stream_error',
        this.headers,
      );
      this.#abortReason = err;
      this.#abort?.(err);
      return true;
    }
    const n = chunk.length;
    const budget = this.#budget;
    if (this.#heldBytes + n > HOLD_MAX_BYTES || (budget !== undefined && budget.used + n > budget.max)) {
      this.letGo();
      return !this.#paused;
    }
    this.#heldBytes += n;
    if (budget !== undefined) budget.used += n;
    return !this.#paused;
  }

  /** Leaves the holding state, giving back to the budget what the hold kept. */
  #unhold(): void {
    if (!this.#holding) return;
    this.#holding = false;
    const budget = this.#budget;
    if (budget !== undefined) {
      budget.used -= this.#heldBytes;
      if (this.#holdId !== undefined) budget.delete(this.#holdId, this);
    }
    this.#heldBytes = 0;
  }

  /** Ends a probation hold: the stream goes live with what it holds (its time or size is up, or the probation ended). */
  letGo(): void {
    if (!this.#holding || this.#state !== ST_OPEN) return;
    this.#unhold();
    this.#clearTimer();
    this.#settle();
    if (!this.#sink) this.#paused = true;
  }

  #finish(): void {
    const sink = this.#sink!;
    const buf = this.#buffered;
    if (buf) {
      this.#buffered = undefined;
      for (const c of buf) sink.data(c);
    }
    sink.end();
  }

  #fail(error: Error): void {
    if (this.#state !== ST_OPEN) return;
    this.#unhold();
    this.#clearTimer();
    this.#state = ST_FAILED;
    this.#error = error;
    if (!this.#settled) {
      this.#settled = true;
      this.#buffered = undefined;
      this.#reject(error);
    } else if (this.#sink) this.#sink.error(error);
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    // Held before the router sees the result, so that it counts the stream as in flight until it ends.
    if (this.isStream && this.#holder) this.release = this.#holder.hold();
    // Resolved first: the router's continuation is then queued ahead of anything the early answer queues.
    this.#resolve(this);
    if (this.early !== undefined && this.status >= 200 && this.status < 300) this.early.settled(this);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      timers.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}

/** The first-byte timeout's callback: one function for every call (the call comes as the timer's argument). */
function onFirstByteTimeout(call: UpstreamCall): void {
  call.abort(new FirstByteTimeoutError(call.firstByteTimeoutMs));
}

/** A probation hold's time is up: the stream goes live. */
function onHoldTimeout(call: UpstreamCall): void {
  call.letGo();
}

const DUMP: Sink = { data: () => true, end: () => {}, error: () => {} };

/** Transport settings. */
export interface TransportOptions {
  connectTimeoutMs: number;
  http2: boolean;
  connectionsPerOrigin: number | null;
}

/**
 * Keep-alive connection pools per upstream origin (an undici `Agent` keeps one `Pool` per origin), with `noDelay`,
 * a connect timeout and HTTP/2 via ALPN where the upstream offers it.
 */
export function createTransport(o: TransportOptions): AgentType {
  return new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connections: o.connectionsPerOrigin,
    allowH2: o.http2,
    connect: { timeout: o.connectTimeoutMs, noDelay: true },
  });
}
