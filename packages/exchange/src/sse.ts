import { errorEventStatus } from '@lb/providers';
import { ERROR_EVENT_MARKS } from '@lb/providers/internal';

/**
 * Server-sent events as the engine reads them: whole events cut from a body of byte chunks (incrementally, each byte
 * looked at once), and the first-content gate's verdict on them. Bytes, not strings: a chunk is decoded only when the
 * gate has to read an event that is not the common one.
 */

/** One event may hold at most this many bytes unless configured (`maxEventBytes`, env `LB_MAX_SSE_EVENT_BYTES`). */
export const DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024;

const LF = 10;
const CR = 13;

/**
 * Cuts an event stream into whole events. `push(chunk)` returns the bytes of the events it completes (with the
 * unfinished event before them, when there was one) and keeps the rest for the next chunk; an event that grows past
 * `maxEventBytes` without its blank line sets `overflow` (and `push` returns undefined from then on). Each byte is
 * scanned once, however a long event is split: an endless line costs linear time, not quadratic.
 */
export class EventFramer {
  /** The unfinished event's chunks (its bytes so far). */
  #parts: Uint8Array[] | undefined;
  #size = 0;
  /** The unfinished event's last two bytes (for a blank line split across chunks); -1: none. */
  #b1 = -1;
  #b2 = -1;
  readonly #max: number;
  /** Set when an event grew past the limit: the stream must end. */
  overflow = false;
  /** Bytes looked at so far (each byte once: a test reads it to see the scan is linear). */
  scanned = 0;

  constructor(maxEventBytes: number = DEFAULT_MAX_EVENT_BYTES) {
    this.#max = maxEventBytes;
  }

  /** Bytes held back (an event without its end yet). */
  get pending(): number {
    return this.#size;
  }

  push(chunk: Uint8Array): Uint8Array | undefined {
    if (this.overflow) return undefined;
    const n = chunk.length;
    this.scanned += n;
    const parts = this.#parts;
    // The common case: no unfinished event, and the chunk ends with one.
    if (parts === undefined && n >= 2 && chunk[n - 1] === LF && chunk[n - 2] === LF) return chunk;
    const end = this.#lastEnd(chunk);
    if (end < 0) {
      if (n === 0) return undefined;
      this.#keep(chunk);
      return undefined;
    }
    let out: Uint8Array;
    if (parts === undefined) out = end === n ? chunk : chunk.subarray(0, end);
    else {
      out = new Uint8Array(this.#size + end);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      out.set(end === n ? chunk : chunk.subarray(0, end), at);
      this.#parts = undefined;
      this.#size = 0;
      this.#b1 = this.#b2 = -1;
    }
    if (end < n) this.#keep(chunk.subarray(end));
    return out;
  }

  /** The unfinished event, to end a stream with (undefined when none). */
  rest(): Uint8Array | undefined {
    const parts = this.#parts;
    if (parts === undefined) return undefined;
    this.#parts = undefined;
    this.#size = 0;
    this.#b1 = this.#b2 = -1;
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  #keep(chunk: Uint8Array): void {
    (this.#parts ??= []).push(chunk);
    this.#size += chunk.length;
    const n = chunk.length;
    if (n >= 2) {
      this.#b1 = chunk[n - 1]!;
      this.#b2 = chunk[n - 2]!;
    } else if (n === 1) {
      this.#b2 = this.#b1;
      this.#b1 = chunk[0]!;
    }
    if (this.#size > this.#max) {
      this.overflow = true;
      this.#parts = undefined;
      this.#size = 0;
    }
  }

  /**
   * Index after the last blank line (`\n\n`, `\r\n\r\n`, or one that begins in the unfinished event) in `chunk`, or
   * -1. Newlines are found with the native single-byte search, from the end.
   */
  #lastEnd(chunk: Uint8Array): number {
    for (let i = chunk.lastIndexOf(LF); i >= 0; i = i > 0 ? chunk.lastIndexOf(LF, i - 1) : -1) {
      const p1 = i >= 1 ? chunk[i - 1]! : this.#b1;
      if (p1 === LF) return i + 1;
      if (p1 === CR) {
        const p2 = i >= 2 ? chunk[i - 2]! : i === 1 ? this.#b1 : this.#b2;
        if (p2 === LF) return i + 1;
      }
    }
    return -1;
  }
}

/** True when `bytes` hold an error event (`data: {"error"…` or `event: error`): `@lb/providers`' marks. */
export function hasErrorEvent(bytes: Uint8Array): boolean {
  for (let i = 0; i < ERROR_EVENT_MARKS.length; i++)
    if (indexOf(bytes, ERROR_EVENT_MARKS[i]!, 0) >= 0) return true;
  return false;
}

/** Node's native substring search over bytes (`Buffer#indexOf`), applied to any `Uint8Array`; absent off Node. */
const nativeIndexOf =
  typeof Buffer === 'function'
    ? (Buffer.prototype.indexOf as unknown as (
        this: Uint8Array,
        value: Uint8Array,
        byteOffset: number,
      ) => number)
    : undefined;

/**
 * First `needle` in `hay` from `from` (>= 0), or -1. Node's native search: a JS loop from each occurrence of the
 * needle's first byte costs 2–4× more on JSON, where that byte (`"`, `e`) is everywhere. Off Node, that loop.
 */
export function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  if (nativeIndexOf !== undefined) return nativeIndexOf.call(hay, needle, from);
  const first = needle[0]!;
  const last = hay.length - needle.length;
  outer: for (let i = hay.indexOf(first, from); i >= 0 && i <= last; i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** What the gate saw in the events so far. */
export type GateVerdict =
  | { readonly kind: 'wait' }
  | { readonly kind: 'pass' }
  | { readonly kind: 'error'; readonly status: number; readonly message: string; readonly type: string };

/** The verdict while only preamble came. */
export const WAIT: GateVerdict = Object.freeze({ kind: 'wait' });
/** The verdict that commits a stream. */
export const PASS: GateVerdict = Object.freeze({ kind: 'pass' });

/** Past this many bytes of preamble the gate opens anyway. */
export const MAX_PREAMBLE_BYTES = 64 * 1024;

/** Preamble event types of the Responses API and Anthropic's Messages API. */
const PREAMBLE_TYPES = new Set([
  'response.created',
  'response.in_progress',
  'message_start',
  'content_block_start',
  'ping',
]);

const enc = new TextEncoder();
const DATA = enc.encode('data:');
const CHOICES = enc.encode('"choices":[{');
const DELTA = enc.encode('"delta":{');
const CONTENT = enc.encode('"content":"');
const ERROR_KEY = enc.encode('"error"');
const TYPE_KEY = enc.encode('"type":');

/**
 * The common case of {@link gate}, read from the bytes without decoding or parsing them: true when the first event
 * in `chunk` is a one-line `data:` chat completion chunk whose delta carries content (`"content":"` and a character),
 * and that says nothing of an error or an event type. Where this says true, `gate` says `pass` too.
 */
export function quickPass(chunk: Uint8Array): boolean {
  if (indexOf(chunk, DATA, 0) !== 0) return false;
  const brace = chunk[5] === 0x20 ? 6 : 5;
  if (chunk[brace] !== 0x7b /* { */) return false;
  const nl = chunk.indexOf(LF);
  // One line (its newline is the first of the blank line that ends the event), no CR line endings.
  if (nl < 0 || chunk[nl + 1] !== LF) return false;
  const end = nl;
  if (before(chunk, CR, end) || beforeSeq(chunk, ERROR_KEY, end) || beforeSeq(chunk, TYPE_KEY, end))
    return false;
  const choices = indexOf(chunk, CHOICES, 0);
  if (choices < 0 || choices > end) return false;
  const delta = indexOf(chunk, DELTA, choices);
  if (delta < 0 || delta > end) return false;
  const content = indexOf(chunk, CONTENT, delta);
  const at = content + CONTENT.length;
  return content >= 0 && at < end && chunk[at] !== 0x22 /* " */;
}

function before(chunk: Uint8Array, byte: number, end: number): boolean {
  const i = chunk.indexOf(byte);
  return i >= 0 && i < end;
}

function beforeSeq(chunk: Uint8Array, needle: Uint8Array, end: number): boolean {
  const i = indexOf(chunk, needle, 0);
  return i >= 0 && i < end;
}

const decoder = new TextDecoder();

/**
 * The gate's verdict on whole events (`bytes` holds only complete events, as {@link EventFramer} gives them): `pass`
 * at the first event that carries content (a non-empty delta, a tool call, a finish reason, usage, `[DONE]`, or
 * anything it does not know), `error` when an error event comes first, `wait` while only preamble came (role-only or
 * empty deltas, comments, `*.created`, pings).
 */
export function gate(bytes: Uint8Array): GateVerdict {
  if (quickPass(bytes)) return PASS;
  const raw = decoder.decode(bytes);
  const t = raw.indexOf('\r') >= 0 ? raw.replace(/\r\n?/g, '\n') : raw;
  let start = 0;
  for (;;) {
    const end = t.indexOf('\n\n', start);
    if (end < 0) return WAIT;
    const v = judgeEvent(t.slice(start, end));
    if (v !== WAIT) return v;
    start = end + 2;
  }
}

function judgeEvent(ev: string): GateVerdict {
  let eventName = '';
  let data = '';
  for (const line of ev.split('\n')) {
    if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(line[5] === ' ' ? 6 : 5);
    else if (line.startsWith('event:')) eventName = line.slice(6).trim();
  }
  if (data === '') return eventName === 'error' ? errorFrom(undefined) : WAIT;
  if (data === '[DONE]') return PASS;
  let obj: any;
  try {
    obj = JSON.parse(data);
  } catch {
    return eventName === 'error' ? errorFrom({ message: data }) : PASS;
  }
  if (obj === null || typeof obj !== 'object') return PASS;
  if (eventName === 'error' || obj.type === 'error' || (obj.error && typeof obj.error === 'object'))
    return errorFrom(obj.error ?? obj);
  if (obj.type === 'response.failed') return errorFrom(obj.response?.error ?? obj);
  if (typeof obj.type === 'string' && PREAMBLE_TYPES.has(obj.type)) return WAIT;
  const choices = obj.choices;
  if (Array.isArray(choices)) {
    if (choices.length === 0) return obj.usage ? PASS : WAIT;
    for (const c of choices) {
      if (c?.finish_reason) return PASS;
      if (typeof c?.text === 'string' && c.text !== '') return PASS;
      const d = c?.delta;
      if (!d) continue;
      if (typeof d.content === 'string' && d.content !== '') return PASS;
      if (d.tool_calls || d.function_call || d.refusal || d.reasoning_content || d.reasoning) return PASS;
    }
    return WAIT;
  }
  return PASS;
}

/** An error event's verdict, its status from `@lb/providers`' one table ({@link errorEventStatus}). */
export function errorFrom(e: any): GateVerdict & { kind: 'error' } {
  return {
    kind: 'error',
    status: errorEventStatus(e ?? undefined),
    message: String(e?.message ?? 'the upstream stream sent an error event'),
    type: String(e?.type ?? e?.code ?? 'upstream_error'),
  };
}

/**
 * The first error event in `bytes` (whole events), as the failure it stands for, or undefined. Used where a stream is
 * still held back (probation): an error event anywhere in it fails the attempt.
 */
export function errorEventIn(bytes: Uint8Array): (GateVerdict & { kind: 'error' }) | undefined {
  if (!hasErrorEvent(bytes)) return undefined;
  const v = gate(bytes);
  if (v.kind === 'error') return v;
  // After content: find the error event itself.
  const t = decoder.decode(bytes).replace(/\r\n?/g, '\n');
  for (const ev of t.split('\n\n')) {
    if (!/^(data:\s*\{\s*"error"|event:\s*error)/m.test(ev)) continue;
    const r = judgeEvent(ev);
    if (r.kind === 'error') return r;
  }
  return errorFrom({ message: 'the stream sent an error event', type: 'upstream_stream_error' });
}

/** An SSE event that ends a stream with an error the `openai` SDK raises (`APIError`). */
export function sseError(message: string, type = 'server_error', code = 'upstream_stream_error'): string {
  return `data: ${JSON.stringify({ error: { message, type, code, param: null } })}\n\n`;
}
