import { isAbortError, redact, type Usage } from '@lb/core';
import { errorEventAt, hasErrorEvent, hasUsage, type StreamTranslator, usageFromBytes } from '@lb/providers';
import { StreamInterruptedError, StreamTimeoutError } from '../errors.js';

const encoder = new TextEncoder();
type Reader = ReadableStreamDefaultReader<Uint8Array>;

/** What the first read of a 2xx stream found. */
export type FirstRead =
  | { kind: 'data'; chunk: Uint8Array; decoder: TextDecoder }
  /** The upstream signalled an error before any byte reached the caller: an answer to classify (and fail over). */
  | { kind: 'failure'; response: Response };

/**
 * Reads until the first byte the caller would get, within `timeoutMs` (0: no limit). Rejects (so the router fails
 * over) when the stream breaks, ends or stays silent before that; turns an error event sent first into an error
 * response with the status it stands for.
 */
export async function readFirst(
  reader: Reader,
  endpointId: string,
  timeoutMs: number,
  translator: StreamTranslator | undefined,
): Promise<FirstRead> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut: Error | undefined;
  if (timeoutMs > 0) {
    timer = setTimeout(() => {
      timedOut = routerError(new StreamTimeoutError(endpointId, 'first-byte', timeoutMs));
      reader.cancel(timedOut).catch(() => {});
    }, timeoutMs);
  }
  const decoder = new TextDecoder();
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        throw timedOut ?? e;
      }
      if (timedOut) throw timedOut;
      if (r.done) {
        if (translator) {
          const tail = translator.end();
          if (translator.error) return { kind: 'failure', response: failureResponse(translator.error) };
          if (tail) return { kind: 'data', chunk: encoder.encode(tail), decoder };
        }
        throw Object.assign(
          new Error(`Stream from endpoint ${JSON.stringify(endpointId)} ended before its first byte`),
          {
            code: 'ERR_LB_EMPTY_STREAM',
          },
        );
      }
      const chunk = r.value;
      if (!chunk || chunk.length === 0) continue;
      if (translator) {
        const out = translated(chunk, translator, decoder);
        if (out instanceof Response) return failed(reader, out);
        if (out.length) return { kind: 'data', chunk: out, decoder };
        continue;
      }
      const failure = errorEvent(chunk);
      if (failure) return failed(reader, failure);
      return { kind: 'data', chunk, decoder };
    }
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** Cancels the upstream body: `response` (the failure an error event stands for) answers the attempt instead. */
function failed(reader: Reader, response: Response): { kind: 'failure'; response: Response } {
  reader.cancel().catch(() => {});
  return { kind: 'failure', response };
}

/** `chunk` through a dialect's stream translator: the OpenAI bytes (maybe none yet), or the failure it reported. */
function translated(
  chunk: Uint8Array,
  translator: StreamTranslator,
  decoder: TextDecoder,
): Uint8Array | Response {
  const out = translator.push(decoder.decode(chunk, { stream: true }));
  if (translator.error) return failureResponse(translator.error);
  return encoder.encode(out);
}

/**
 * The same failure as the router should classify it: by kind (timeout, network), not by the status our error would
 * render with.
 */
function routerError(e: StreamTimeoutError | StreamInterruptedError, cause?: unknown): Error {
  if (cause !== undefined) return cause as Error;
  return Object.assign(new Error(e.message), {
    name: e.name === 'StreamTimeoutError' ? 'TimeoutError' : 'StreamInterruptedError',
    code: e.name === 'StreamTimeoutError' ? 'ERR_LB_TIMEOUT' : 'ERR_LB_STREAM',
  });
}

/** The HTTP status an OpenAI-style error object stands for. */
function statusOf(error: Record<string, unknown>): number {
  const n = Number(error.status ?? error.code);
  if (Number.isInteger(n) && n >= 400 && n < 600) return n;
  const tag = `${error.type ?? ''} ${error.code ?? ''}`;
  if (/rate.?limit|quota/i.test(tag)) return 429;
  if (/overload/i.test(tag)) return 529;
  if (/auth|api.?key/i.test(tag)) return 401;
  if (/invalid_request|not_found|context_length/i.test(tag)) return 400;
  return 502;
}

function failureResponse(f: { status: number; type: string; message: string }): Response {
  return jsonResponse(f.status, { error: { message: f.message, type: f.type, code: null, param: null } });
}

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

/** An OpenAI-dialect stream whose first event is an error (`data: {"error":…}` or `event: error`). */
function errorEvent(chunk: Uint8Array): Response | undefined {
  // Cheap byte test first: "data: {" then an "error" key, or "event: error".
  let i = 0;
  while (i < chunk.length && (chunk[i] === 10 || chunk[i] === 13 || chunk[i] === 32)) i++;
  if (chunk[i] !== 100 /* d */ && chunk[i] !== 101 /* e */) return undefined;
  const head = new TextDecoder().decode(chunk.subarray(i, i + 64));
  if (!/^(data:\s*\{\s*"error"|event:\s*error)/.test(head)) return undefined;
  const text = new TextDecoder().decode(chunk);
  const m = /^data:\s*(.*)$/m.exec(text);
  let error: Record<string, unknown> = { message: 'upstream stream error', type: 'server_error' };
  try {
    const parsed = m ? JSON.parse(m[1]) : undefined;
    if (parsed && typeof parsed === 'object') {
      const e = (parsed as { error?: unknown }).error ?? parsed;
      if (e && typeof e === 'object') error = e as Record<string, unknown>;
    }
  } catch {
    // keep the generic error
  }
  return jsonResponse(statusOf(error), {
    error: {
      message: String(error.message ?? 'upstream stream error'),
      type: error.type ?? 'server_error',
      code: error.code ?? null,
      param: null,
    },
  });
}

/** A stream held for probation goes live past this many bytes (a bound on what one held stream keeps in memory). */
export const HOLD_MAX_BYTES = 512 * 1024;

/** What all of one client's held streams keep together (`streamProbationMaxBytes`): past `max`, a stream goes live. */
export interface HoldBudget {
  used: number;
  readonly max: number;
}

const EXPIRED = Symbol('hold expired');

/** What a probation hold read: the bytes for the caller and the reader to go on with, or a failure to fail over. */
export type Held =
  | { kind: 'data'; chunk: Uint8Array; reader: Reader }
  | { kind: 'failure'; response: Response };

/**
 * Stream probation (`AttemptContext.streamProbation`): reads a stream on, after its first byte, before the caller
 * gets any of it: to its end, for at most `holdMs` or {@link HOLD_MAX_BYTES} (or until the client's held streams
 * together would go past `budget`, or `released` settles: the endpoint's probation ended). A break rejects and an
 * error event answers as an error response, so the router fails over and the caller never sees the broken stream.
 * What was read comes back as one chunk, with a reader that goes on where the hold stopped (a read still pending when
 * the time was up included).
 */
export async function holdBack(
  reader: Reader,
  first: Uint8Array,
  holdMs: number,
  translator: StreamTranslator | undefined,
  decoder: TextDecoder,
  budget: HoldBudget,
  released?: Promise<void>,
): Promise<Held> {
  const parts: Uint8Array[] = [];
  let size = 0;
  // What this hold has counted against the budget (given back when it ends, whichever way).
  let counted = 0;
  /** Keeps `chunk` for the caller; false when the hold must let go (its own bound, or the client's budget). */
  const keep = (chunk: Uint8Array): boolean => {
    parts.push(chunk);
    size += chunk.length;
    if (size > HOLD_MAX_BYTES || budget.used + chunk.length > budget.max) return false;
    budget.used += chunk.length;
    counted += chunk.length;
    return true;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expiry = new Promise<typeof EXPIRED>((resolve) => {
    timer = setTimeout(resolve, holdMs, EXPIRED);
    // The endpoint's probation ended: let go as when the time is up.
    released?.then(() => resolve(EXPIRED));
  });
  const joined = (): Uint8Array => {
    if (parts.length === 1) return parts[0]!;
    const out = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  try {
    // The first chunk may carry more events than the first (an error event among them).
    const failure = translator ? undefined : errorEventIn(first);
    if (failure) return failed(reader, failure);
    if (!keep(first)) return { kind: 'data', chunk: joined(), reader };
    for (;;) {
      const read = reader.read();
      const r = await Promise.race([read, expiry]);
      if (r === EXPIRED) {
        // The pending read goes to the caller's stream; until it awaits it, its rejection is handled here.
        read.catch(() => {});
        return { kind: 'data', chunk: joined(), reader: resumed(reader, read) };
      }
      if (r.done) return { kind: 'data', chunk: joined(), reader: resumed(reader, read) };
      let chunk = r.value;
      if (translator) {
        const out = translated(chunk, translator, decoder);
        if (out instanceof Response) return failed(reader, out);
        chunk = out;
      } else {
        const failure = errorEventIn(chunk);
        if (failure) return failed(reader, failure);
      }
      if (chunk.length === 0) continue;
      if (!keep(chunk)) return { kind: 'data', chunk: joined(), reader };
    }
  } finally {
    clearTimeout(timer);
    budget.used -= counted;
  }
}

const STREAM_ERROR = {
  status: 502,
  type: 'upstream_stream_error',
  message: 'the stream sent an error event',
};

/** An error event anywhere in an OpenAI-dialect chunk, as the error response it stands for. */
function errorEventIn(chunk: Uint8Array): Response | undefined {
  const at = errorEventAt(chunk);
  if (at < 0) return undefined;
  return errorEvent(chunk.subarray(at)) ?? failureResponse(STREAM_ERROR);
}

/** `reader`, whose next read is `next` (a read already started, or the end already seen). */
function resumed(reader: Reader, next: Promise<ReadableStreamReadResult<Uint8Array>>): Reader {
  let pending: typeof next | undefined = next;
  return {
    read() {
      const p = pending;
      pending = undefined;
      return p ?? reader.read();
    },
    cancel: (reason?: unknown) => reader.cancel(reason),
    releaseLock: () => reader.releaseLock(),
    closed: reader.closed,
  } as Reader;
}

/** Settings of one wrapped stream. */
export interface WrapOptions {
  endpointId: string;
  idleTimeoutMs: number;
  translator: StreamTranslator | undefined;
  /** The decoder the first read used (keeps a character split across chunks). */
  decoder: TextDecoder;
  /** The caller's signal: aborting it cancels the upstream body. */
  signal: AbortSignal | undefined;
  /** Ends the router's hold on the attempt; called exactly once. */
  finish: (error?: unknown) => void;
  reportUsage: (usage: Usage) => void;
  /** Read token usage from the passing bytes (untranslated streams, while something listens for it). */
  readUsage?: boolean;
  /** Secrets to keep out of error messages. */
  secrets: readonly (string | undefined)[];
}

/**
 * The body handed to the caller: the first chunk, then the rest of the upstream body, translated when the dialect
 * translates. A break, an idle timeout or an upstream error event after the first byte errors the stream at once;
 * the end, an error or a cancel ends the router's hold exactly once. One timer per stream, re-armed only when it
 * fires (no timer churn per chunk).
 */
export function wrapStream(reader: Reader, first: Uint8Array, o: WrapOptions): ReadableStream<Uint8Array> {
  let pending: Uint8Array | undefined = first;
  let bytes = 0;
  let last = Date.now();
  let settled = false;
  /** Set once the upstream sent an error event: the stream counts as broken however the caller then ends it. */
  let broke: Error | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const decoder = o.decoder;
  const signal = o.signal;
  const tail = o.readUsage === true && o.translator === undefined ? new UsageTail(true) : undefined;

  const settle = (error?: unknown) => {
    if (settled) return;
    settled = true;
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    const usage = o.translator?.usage ?? tail?.usage();
    if (usage) o.reportUsage(usage);
    o.finish(error);
  };
  const fail = (error: StreamTimeoutError | StreamInterruptedError, cause?: unknown) => {
    if (settled) return;
    settle(routerError(error, cause));
    reader.cancel(error).catch(() => {});
    try {
      ctl.error(error);
    } catch {
      // already closed
    }
  };
  function onAbort() {
    if (settled) return;
    settle();
    const reason =
      signal?.reason ?? Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
    reader.cancel(reason).catch(() => {});
    try {
      ctl.error(reason);
    } catch {
      // already closed
    }
  }
  const errorEvent = (message: string) => {
    broke ??= routerError(new StreamInterruptedError(o.endpointId, bytes, redact(message, o.secrets)));
  };
  const watch = () => {
    const idle = Date.now() - last;
    if (idle >= o.idleTimeoutMs) fail(new StreamTimeoutError(o.endpointId, 'idle', o.idleTimeoutMs));
    else timer = setTimeout(watch, o.idleTimeoutMs - idle);
  };

  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        ctl = controller;
        if (signal) {
          if (signal.aborted) return onAbort();
          signal.addEventListener('abort', onAbort, { once: true });
        }
        if (o.idleTimeoutMs > 0) timer = setTimeout(watch, o.idleTimeoutMs);
      },
      async pull(controller) {
        if (pending) {
          if (!o.translator && hasErrorEvent(pending)) errorEvent('the stream sent an error event');
          bytes += pending.length;
          tail?.push(pending);
          controller.enqueue(pending);
          pending = undefined;
          return;
        }
        // Loop until something is enqueued: a pull that enqueues nothing is not called again.
        for (;;) {
          if (settled) return;
          let r: ReadableStreamReadResult<Uint8Array>;
          try {
            r = await reader.read();
          } catch (e) {
            if (settled) return;
            if (signal?.aborted || isAbortError(e)) return onAbort();
            const msg = redact(String((e as Error)?.message ?? e), o.secrets);
            const code = (e as { cause?: { code?: unknown } })?.cause?.code;
            return fail(
              new StreamInterruptedError(o.endpointId, bytes, code ? `${msg} (${code})` : msg, e),
              e,
            );
          }
          if (settled) return;
          last = Date.now();
          if (r.done) {
            const tail = o.translator ? o.translator.end() : '';
            if (tail) controller.enqueue(encoder.encode(tail));
            const err = o.translator?.error;
            if (err) errorEvent(err.message);
            settle(broke);
            controller.close();
            return;
          }
          if (o.translator) {
            const out = o.translator.push(decoder.decode(r.value, { stream: true }));
            const err = o.translator.error;
            if (err) errorEvent(err.message);
            if (!out) continue;
            const chunk = encoder.encode(out);
            bytes += chunk.length;
            controller.enqueue(chunk);
            return;
          }
          if (r.value.length === 0) continue;
          if (hasErrorEvent(r.value)) errorEvent('the stream sent an error event');
          bytes += r.value.length;
          tail?.push(r.value);
          controller.enqueue(r.value);
          return;
        }
      },
      cancel(reason) {
        // The caller stopped reading: not the endpoint's fault, unless it stopped at the upstream's error event.
        settle(broke);
        return reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * The tail of a body, enough to read its token usage at its end (`usageFromBytes`): the last two chunks and, when
 * `watch` (event streams, where `[DONE]` may follow in chunks of its own), the last chunk that carried usage and the
 * one before it.
 */
class UsageTail {
  #last: Uint8Array | undefined;
  #prev: Uint8Array | undefined;
  #hit: Uint8Array | undefined;
  #hitPrev: Uint8Array | undefined;
  readonly #watch: boolean;

  constructor(watch: boolean) {
    this.#watch = watch;
  }

  push(chunk: Uint8Array): void {
    if (this.#watch && hasUsage(chunk)) {
      this.#hit = chunk;
      this.#hitPrev = this.#last;
    }
    this.#prev = this.#last;
    this.#last = chunk;
  }

  usage(): Usage | undefined {
    if (this.#hit !== undefined) return usageFromBytes(this.#hit, this.#hitPrev);
    return this.#last === undefined ? undefined : usageFromBytes(this.#last, this.#prev);
  }
}

/**
 * A JSON answer whose body reports its token usage (`reportUsage`) once it has been read through: the bytes pass
 * unchanged; the usage object sits at the end. `headers`: the new response's (the body is already decoded: no upstream
 * length or encoding).
 */
export function withUsage(res: Response, reportUsage: (usage: Usage) => void, headers: Headers): Response {
  if (!res.body) return res;
  const tail = new UsageTail(false);
  const body = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        tail.push(chunk);
        controller.enqueue(chunk);
      },
      flush() {
        const usage = tail.usage();
        if (usage) reportUsage(usage);
      },
    }),
  );
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
}
