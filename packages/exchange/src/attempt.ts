import type { Usage } from '@lb/core';
import type { StreamTranslator } from '@lb/providers';
import { usageFromBytes } from '@lb/providers/internal';
import {
  EventTooLargeError,
  ExchangeTimeoutError,
  type ResponseHeaders,
  StreamDurationError,
  StreamOpenError,
} from './errors.js';
import { HOLD_MAX_BYTES, type HoldBudget } from './hold-budget.js';
import {
  DEFAULT_MAX_EVENT_BYTES,
  EventFramer,
  errorEventIn,
  gate,
  hasErrorEvent,
  MAX_PREAMBLE_BYTES,
} from './sse.js';
import { carriesUsage } from './usage.js';

/** Timers the engine arms (first byte, idle, probation hold). lb-server gives undici's coarse shared ones. */
export interface Timers {
  setTimeout(fn: (arg: any) => void, ms: number, arg: any): unknown;
  clearTimeout(timer: unknown): void;
}

/** The platform's timers. */
export const defaultTimers: Timers = {
  setTimeout: (fn, ms, arg) => setTimeout(fn, ms, arg),
  clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
};

/** Where a response's body goes once the attempt is settled. `data` returns false to pause the upstream. */
export interface Sink {
  data(chunk: Uint8Array): boolean;
  end(): void;
  error(err: Error): void;
}

/** What a stream attempt holds while it is served (`AttemptContext` of `@lb/core`). */
export interface StreamHolder {
  hold(): (err?: unknown) => void;
  /** The endpoint: its held streams are let go together when its probation ends ({@link HoldBudget.release}). */
  readonly endpoint?: { readonly id: string };
}

/** Settings one surface gives all its attempts (built once, not per request). */
export interface AttemptSettings {
  /** Streams: longest silence between two chunks once content flowed, ms; 0 = none. */
  readonly idleTimeoutMs: number;
  /** Streams from an endpoint on probation are held back whole for up to this many ms; 0 = off. */
  readonly holdMs: number;
  /** What held streams keep together. */
  readonly budget: HoldBudget | undefined;
  /** One server-sent event's largest size, bytes. Default {@link DEFAULT_MAX_EVENT_BYTES}. */
  readonly maxEventBytes?: number;
  /**
   * Streams: the longest one stream may run, ms, from its response head; past it the upstream is aborted and the
   * stream ends with an SSE error (checked as chunks come: no timer). 0 or absent: no bound.
   */
  readonly maxStreamDurationMs?: number;
  readonly timers: Timers;
  /**
   * Fetch transports: a response that is not an event stream is kept whole as it came (`Attempt.response`) rather
   * than read through the engine. The adapter's JSON answers go so (a new `Response` around a JS stream costs ~40 µs).
   */
  readonly passBody?: boolean;
}

/** Told, synchronously, when a 2xx response settles an attempt (which the router is sure to count a success). */
export interface EarlyResponder {
  settled(call: Attempt): void;
}

/** One options object for every `follow` (none allocated per attempt). */
const ONCE = Object.freeze({ once: true });
const EMPTY: ResponseHeaders = Object.freeze({}) as ResponseHeaders;
/** Where an attempt's answer is: still coming, ended whole, or failed. */
type AttemptState = 'open' | 'ended' | 'failed';
const encoder = new TextEncoder();
const NL2 = encoder.encode('\n\n');

/**
 * One upstream exchange: the attempt and stream lifecycle both surfaces share, driven by a transport's callbacks
 * (`onConnect`, `onResponse`, `onData`, `onComplete`, `onError`). `promise` settles when the attempt can be judged:
 * at the response headers, or — for a 2xx event stream the caller asked for — at the first event with content
 * (preambles do not commit: role-only or empty deltas, comments, pings, `*.created`). An error event before that
 * fails the attempt ({@link StreamOpenError}, so the router fails over); so does one while the stream is held on
 * probation. Once committed, the body flows into the {@link Sink} given to `attach`, whole events only, with
 * back-pressure; chunks that arrived before (the gated preamble, the held stream) are flushed first.
 */
export class Attempt {
  status = 0;
  headers: ResponseHeaders = EMPTY;
  /** True when the response is a 2xx event stream. */
  isStream = false;
  /** The upstream sent an error event after the stream was committed (what the client saw is a broken stream). */
  upstreamError = false;
  /** Bytes handed to the sink. */
  delivered = 0;
  /** The response as the fetch transport had it, when `passBody` took it (see {@link AttemptSettings.passBody}). */
  response: Response | undefined;
  readonly promise: Promise<this>;
  #resolve!: (v: this) => void;
  #reject!: (e: unknown) => void;
  #settled = false;
  #abort: ((err: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #paused = false;
  #abortReason: Error | undefined;
  #gating = false;
  #preamble = 0;
  /** Probation: the stream passed the gate and is held back whole. */
  #holding = false;
  #heldBytes = 0;
  #buffered: Uint8Array[] | undefined;
  #sink: Sink | undefined;
  #state: AttemptState = 'open';
  #error: Error | undefined;
  #timer: unknown;
  #lastAt = 0;
  /** Epoch ms of a stream's response head, while `maxStreamDurationMs` bounds it. */
  #streamAt = 0;
  #framer: EventFramer | undefined;
  /** Usage: the last chunk that carried it (streams) or the last two chunks (JSON answers). */
  #last: Uint8Array | undefined;
  #prev: Uint8Array | undefined;
  #decoder: TextDecoder | undefined;
  #follow: { signal: AbortSignal; fn: () => void } | undefined;
  readonly #s: AttemptSettings;
  readonly #gateStream: boolean;
  /** How long the attempt may take to settle (a gated stream: to its first content), ms; 0 = no limit here. */
  readonly settleTimeoutMs: number;
  /** > 0: the endpoint is on stream probation, so a 2xx stream is held back whole for up to this many ms. */
  readonly holdMs: number;
  readonly translator: StreamTranslator | undefined;
  readonly #holder: StreamHolder | undefined;
  #holdId: string | undefined;
  /** Set when a 2xx stream settled the attempt: ends the router's hold on the endpoint. Call once. */
  release: ((err?: unknown) => void) | undefined;
  /** Answers the client as soon as a 2xx settles the attempt, in the same step. */
  early: EarlyResponder | undefined = undefined;

  /**
   * `stream`: the client asked for a stream (a 2xx event stream is gated). `settleTimeoutMs`: see the field. `holder`:
   * for stream requests, the attempt whose endpoint stays held while the stream is served. `probation`: the endpoint
   * is on stream probation (`AttemptContext.streamProbation`).
   */
  constructor(
    settings: AttemptSettings,
    stream: boolean,
    settleTimeoutMs: number,
    holder?: StreamHolder,
    probation = false,
    translator?: StreamTranslator,
  ) {
    this.#s = settings;
    this.#gateStream = stream;
    this.settleTimeoutMs = settleTimeoutMs;
    this.holdMs = stream && probation ? settings.holdMs : 0;
    this.translator = translator;
    this.#holder = holder;
    this.promise = new Promise<this>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (settleTimeoutMs > 0) this.#timer = settings.timers.setTimeout(onSettleTimeout, settleTimeoutMs, this);
  }

  /** True once the whole body arrived (the sink may still be catching up with buffered chunks). */
  get ended(): boolean {
    return this.#state === 'ended';
  }

  /** Aborts the exchange (client went away, timeout). Safe to call at any time, more than once. */
  abort(reason: Error): void {
    if (this.#abortReason || this.#state !== 'open') return;
    this.#abortReason = reason;
    if (this.#abort) this.#abort(reason);
    else this.#fail(reason);
  }

  /** Aborts when `signal` does (the router's attempt signal), until the exchange ends. */
  follow(signal: AbortSignal | undefined): void {
    if (signal === undefined) return;
    if (signal.aborted) {
      this.abort(abortReasonOf(signal));
      return;
    }
    const fn = () => this.abort(abortReasonOf(signal));
    signal.addEventListener('abort', fn, ONCE);
    this.#follow = { signal, fn };
  }

  /** Sends the body (buffered chunks first) to `sink`. */
  attach(sink: Sink): void {
    this.#sink = sink;
    const buf = this.#buffered;
    this.#buffered = undefined;
    if (buf) for (const c of buf) this.#deliver(sink, c);
    if (this.#state === 'ended') this.#finish();
    else if (this.#state === 'failed') sink.error(this.#error!);
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
    if (this.#state !== 'open') return;
    this.#sink = DUMP;
    this.resume();
  }

  /** Token usage the answer reported: the dialect translator's, or read from the tail of the body. */
  usage(): Usage | undefined {
    const tr = this.translator?.usage;
    if (tr !== undefined) return tr;
    const last = this.#last;
    if (last === undefined || this.status >= 300) return undefined;
    return usageFromBytes(last, this.#prev);
  }

  // ---------------------------------------------------------------- transport callbacks

  /** The transport can abort the exchange with `abort` from now on. */
  onConnect(abort: (err: Error) => void): void {
    this.#abort = abort;
    if (this.#abortReason) abort(this.#abortReason);
  }

  /** The response's status and headers (lower-case keys). Returns false to pause the body. */
  onResponse(status: number, headers: ResponseHeaders, resume: () => void): boolean {
    this.#resume = resume;
    this.status = status;
    this.headers = headers;
    const ct = headers['content-type'];
    this.isStream =
      status >= 200 && status < 300 && typeof ct === 'string' && ct.startsWith('text/event-stream');
    if (this.isStream) {
      this.#framer = new EventFramer(this.#s.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES);
      if ((this.#s.maxStreamDurationMs ?? 0) > 0) this.#streamAt = Date.now();
      if (this.#gateStream) {
        this.#gating = true;
        return true;
      }
    }
    this.#clearTimer();
    this.#settle();
    if (!this.#sink) this.#paused = true;
    return !this.#paused;
  }

  /** A chunk of the body. Returns false to pause the upstream until `resume`. */
  onData(chunk: Uint8Array): boolean {
    if (this.#state !== 'open') return true;
    const framer = this.#framer;
    if (framer === undefined) {
      // A whole answer (JSON, audio…): passed through; its last two chunks kept for the usage at its end.
      this.#prev = this.#last;
      this.#last = chunk;
      return this.#pass(chunk);
    }
    if (this.#s.idleTimeoutMs > 0 || this.#streamAt > 0) {
      const now = Date.now();
      this.#lastAt = now;
      const max = this.#s.maxStreamDurationMs!;
      if (this.#streamAt > 0 && now - this.#streamAt > max) {
        this.abort(new StreamDurationError(max));
        return true;
      }
    }
    const tr = this.translator;
    if (tr !== undefined) {
      const out = tr.push((this.#decoder ??= new TextDecoder()).decode(chunk, { stream: true }));
      const fail = tr.error;
      if (fail !== undefined) {
        if (this.#gating || this.#holding) return this.#failOpen(fail.status, fail.message, fail.type);
        this.upstreamError = true;
      }
      if (out === '') return true;
      chunk = encoder.encode(out);
    }
    const block = framer.push(chunk);
    if (framer.overflow) {
      this.abort(new EventTooLargeError(this.#s.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES));
      return true;
    }
    if (block === undefined) {
      if (this.#gating && framer.pending > MAX_PREAMBLE_BYTES) return this.#commit(framer.rest()!);
      return true;
    }
    if (this.#gating) {
      (this.#buffered ??= []).push(block);
      this.#preamble += block.length;
      const v = gate(block);
      if (v.kind === 'wait' && this.#preamble <= MAX_PREAMBLE_BYTES) return true;
      if (v.kind === 'error') return this.#failOpen(v.status, v.message, v.type);
      return this.#commit(undefined, block);
    }
    if (this.#holding) return this.#hold(block, true);
    this.#track(block);
    return this.#pass(block);
  }

  /** The body ended. */
  onComplete(): void {
    if (this.#state !== 'open') return;
    this.#clearTimer();
    this.#unfollow();
    const tail = this.translator !== undefined && this.isStream ? this.translator.end() : '';
    if (tail !== '') {
      const block = this.#framer!.push(encoder.encode(tail));
      if (block !== undefined) (this.#buffered ??= []).push(block);
      if (this.translator!.error && !this.#settled) {
        const f = this.translator!.error;
        this.#failOpen(f.status, f.message, f.type);
        return;
      }
    }
    // An unfinished last event: terminated, so that the client parses it.
    const rest = this.#framer?.rest();
    if (rest !== undefined && rest.length > 0) (this.#buffered ??= []).push(rest, NL2);
    this.#state = 'ended';
    if (this.#gating || this.#holding) {
      // Ended before any content (an empty answer is an answer), or a held stream ended whole: pass it on.
      this.#gating = false;
      this.#unhold();
      this.#settle();
      if (this.#sink) this.#finish();
      return;
    }
    if (this.#sink) this.#finish();
  }

  /** A fetch transport offers the response: taken whole when `passBody` and not an event stream. */
  takeResponse(res: Response): boolean {
    if (this.#s.passBody !== true || this.isStream) return false;
    this.response = res;
    this.#unfollow();
    return true;
  }

  /** The exchange failed (connection error, abort, the transport's own timeout). */
  onError(error: Error): void {
    this.#fail(this.#abortReason ?? error);
  }

  // ---------------------------------------------------------------- the lifecycle

  /** Passes the gate with `block` (buffered already unless `flush` is given): holds it on probation, or settles. */
  #commit(flush: Uint8Array | undefined, block?: Uint8Array): boolean {
    if (flush !== undefined) (this.#buffered ??= []).push(flush);
    this.#gating = false;
    this.#clearTimer();
    if (this.holdMs > 0) {
      this.#holding = true;
      const id = this.#holder?.endpoint?.id;
      const budget = this.#s.budget;
      if (id !== undefined && budget !== undefined) {
        this.#holdId = id;
        budget.add(id, this);
      }
      this.#timer = this.#s.timers.setTimeout(onHoldTimeout, this.holdMs, this);
      return this.#hold(block ?? flush!, false);
    }
    if (block !== undefined) this.#track(block);
    this.#settle();
    this.#armIdle();
    if (!this.#sink) this.#paused = true;
    return !this.#paused;
  }

  /** A committed stream's block: an error event marks the stream broken; a usage object is kept. */
  #track(block: Uint8Array): void {
    if (!this.upstreamError && hasErrorEvent(block)) this.upstreamError = true;
    if (carriesUsage(block)) this.#last = block;
  }

  #pass(chunk: Uint8Array): boolean {
    const sink = this.#sink;
    if (sink !== undefined) {
      if (!this.#deliver(sink, chunk)) this.#paused = true;
    } else {
      (this.#buffered ??= []).push(chunk);
      this.#paused = true;
    }
    return !this.#paused;
  }

  #deliver(sink: Sink, chunk: Uint8Array): boolean {
    this.delivered += chunk.length;
    return sink.data(chunk);
  }

  /** Fails an attempt nothing of which reached the client (an error event at its opening or while held). */
  #failOpen(status: number, message: string, type: string): boolean {
    this.#gating = false;
    this.#unhold();
    this.#clearTimer();
    this.#buffered = undefined;
    const err = new StreamOpenError(status, message, type, this.headers);
    this.#abortReason = err;
    if (this.#abort) this.#abort(err);
    else this.#fail(err);
    return true;
  }

  /** Probation: keeps a block of a held stream (`push` false: it is buffered already). */
  #hold(block: Uint8Array, push: boolean): boolean {
    if (push) this.#buffered!.push(block);
    const failure = errorEventIn(block);
    if (failure !== undefined) return this.#failOpen(failure.status, failure.message, failure.type);
    if (carriesUsage(block)) this.#last = block;
    const n = block.length;
    const budget = this.#s.budget;
    if (this.#heldBytes + n > HOLD_MAX_BYTES || (budget !== undefined && budget.used + n > budget.max)) {
      this.letGo();
      return !this.#paused;
    }
    this.#heldBytes += n;
    if (budget !== undefined) budget.used += n;
    return true;
  }

  #unhold(): void {
    if (!this.#holding) return;
    this.#holding = false;
    const budget = this.#s.budget;
    if (budget !== undefined) {
      budget.used -= this.#heldBytes;
      if (this.#holdId !== undefined) budget.delete(this.#holdId, this);
    }
    this.#heldBytes = 0;
  }

  /** Ends a probation hold: the stream goes live with what it holds (time or size is up, or the probation ended). */
  letGo(): void {
    if (!this.#holding || this.#state !== 'open') return;
    this.#unhold();
    this.#clearTimer();
    this.#settle();
    this.#armIdle();
    if (!this.#sink) this.#paused = true;
  }

  #finish(): void {
    const sink = this.#sink!;
    const buf = this.#buffered;
    if (buf) {
      this.#buffered = undefined;
      for (const c of buf) this.#deliver(sink, c);
    }
    sink.end();
  }

  #fail(error: Error): void {
    if (this.#state !== 'open') return;
    this.#unhold();
    this.#clearTimer();
    this.#unfollow();
    this.#state = 'failed';
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

  #armIdle(): void {
    const ms = this.#s.idleTimeoutMs;
    if (ms > 0 && this.isStream && this.#state === 'open') {
      this.#lastAt = Date.now();
      this.#timer = this.#s.timers.setTimeout(onIdleCheck, ms, this);
    }
  }

  /** @internal The idle timer fired: times the stream out, or waits for the rest of the period. */
  idleCheck(): void {
    this.#timer = undefined;
    if (this.#state !== 'open') return;
    const ms = this.#s.idleTimeoutMs;
    const idle = Date.now() - this.#lastAt;
    if (this.#paused || idle < ms) {
      this.#timer = this.#s.timers.setTimeout(onIdleCheck, this.#paused ? ms : ms - idle, this);
      return;
    }
    this.abort(new ExchangeTimeoutError('idle', ms));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      this.#s.timers.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #unfollow(): void {
    const f = this.#follow;
    if (f !== undefined) {
      this.#follow = undefined;
      f.signal.removeEventListener('abort', f.fn);
    }
  }
}

function abortReasonOf(signal: AbortSignal): Error {
  const r = signal.reason;
  if (r instanceof Error) return r;
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}

/** The settle timer's callback: one function for every attempt (the attempt comes as the timer's argument). */
function onSettleTimeout(call: Attempt): void {
  call.abort(new ExchangeTimeoutError('first-byte', call.settleTimeoutMs));
}

function onHoldTimeout(call: Attempt): void {
  call.letGo();
}

function onIdleCheck(call: Attempt): void {
  call.idleCheck();
}

const DUMP: Sink = { data: () => true, end: () => {}, error: () => {} };
