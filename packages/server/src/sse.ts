import { ERROR_EVENT_MARKS } from '@lb/providers';

/**
 * Server-sent events helpers for the stream gate: a stream is held back until its first event with content, so that
 * a stream that opens with an error event (a provider's `overloaded_error`, an exception) can still fail over.
 */

/** What the gate saw in the events received so far. */
export type GateVerdict =
  | { readonly kind: 'wait' }
  | { readonly kind: 'pass' }
  | { readonly kind: 'error'; readonly status: number; readonly message: string; readonly type: string };

const WAIT: GateVerdict = { kind: 'wait' };
/** The verdict that lets a stream through. */
export const PASS: GateVerdict = { kind: 'pass' };
/**
 * True when `chunk` holds an error event: an upstream reporting a failure inside a stream it had begun, as
 * `data: {"error":…}` or as an `event: error` (the Responses API, Anthropic). `@lb/providers`' marks, with Buffer's
 * native search: it runs on every chunk of every stream.
 */
export function hasErrorEvent(chunk: Buffer): boolean {
  for (let i = 0; i < ERROR_EVENT_MARKS.length; i++)
    if (chunk.indexOf(ERROR_EVENT_MARKS[i]!) >= 0) return true;
  return false;
}

/** Past this many preamble bytes the gate opens anyway. */
const MAX_PREAMBLE = 64 * 1024;

/** Preamble event types of the Responses API and Anthropic's Messages API. */
const PREAMBLE_TYPES = new Set([
  'response.created',
  'response.in_progress',
  'message_start',
  'content_block_start',
  'ping',
]);

/** An event's end. */
export const NL2 = Buffer.from('\n\n');
const DATA = Buffer.from('data:');
const CHOICES = Buffer.from('"choices":[{');
const DELTA = Buffer.from('"delta":{');
const CONTENT = Buffer.from('"content":"');
const ERROR_KEY = Buffer.from('"error"');
const TYPE_KEY = Buffer.from('"type":');

/**
 * The common case of `gate`, read from the bytes without decoding or parsing them: true when the first event in
 * `chunk` is a one-line `data:` chat completion chunk whose delta carries content (`"content":"` and a character),
 * and that says nothing of an error or an event type. Anything else (false) goes to `gate`, which parses. Where this
 * says true, `gate` says `pass` too.
 */
export function quickPass(chunk: Buffer): boolean {
  if (chunk.indexOf(DATA) !== 0) return false;
  const brace = chunk[5] === 0x20 ? 6 : 5;
  if (chunk[brace] !== 0x7b /* { */) return false;
  const end = chunk.indexOf(NL2);
  // One line (the first newline ends the event), no CR line endings.
  if (end < 0 || chunk.indexOf(10) !== end) return false;
  if (before(chunk, 13, end) || before(chunk, ERROR_KEY, end) || before(chunk, TYPE_KEY, end)) return false;
  const choices = chunk.indexOf(CHOICES);
  if (choices < 0 || choices > end) return false;
  const delta = chunk.indexOf(DELTA, choices);
  if (delta < 0 || delta > end) return false;
  const content = chunk.indexOf(CONTENT, delta);
  const at = content + CONTENT.length;
  return content >= 0 && at < end && chunk[at] !== 0x22 /* " */;
}

/** `needle` occurs in `chunk` before `end`. */
function before(chunk: Buffer, needle: Buffer | number, end: number): boolean {
  const i = chunk.indexOf(needle);
  return i >= 0 && i < end;
}

/**
 * Looks at the complete events in `text` (OpenAI SSE, after any dialect translation). `pass` at the first event that
 * carries content (a non-empty delta, a tool call, a finish reason, usage, `[DONE]`, or anything it does not know),
 * `error` when an error event comes first, `wait` while only preamble (role-only deltas, comments, `*.created`) came.
 */
export function gate(text: string): GateVerdict {
  const t = text.indexOf('\r') >= 0 ? text.replace(/\r\n?/g, '\n') : text;
  let start = 0;
  for (;;) {
    const end = t.indexOf('\n\n', start);
    if (end < 0) break;
    const v = judgeEvent(t.slice(start, end));
    if (v !== WAIT) return v;
    start = end + 2;
  }
  return t.length > MAX_PREAMBLE ? PASS : WAIT;
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

function errorFrom(e: any): GateVerdict {
  const type = String(e?.type ?? e?.code ?? 'upstream_error');
  const message = String(e?.message ?? 'the upstream stream opened with an error event');
  const code = String(e?.code ?? '');
  const status =
    typeof e?.status === 'number' && e.status >= 400
      ? e.status
      : /overload/i.test(type) || /overload/i.test(code)
        ? 529
        : /rate_limit/i.test(type) || /rate_limit/i.test(code)
          ? 429
          : type === 'invalid_request_error'
            ? 400
            : 502;
  return { kind: 'error', status, message, type };
}

/**
 * Where the last complete event in `chunk` ends (index after its blank line), or -1. Handles `\n\n` and `\r\n\r\n`.
 */
export function lastEventEnd(chunk: Buffer): number {
  const a = chunk.lastIndexOf('\n\n');
  const b = chunk.lastIndexOf('\r\n\r\n');
  const ea = a < 0 ? -1 : a + 2;
  const eb = b < 0 ? -1 : b + 4;
  return Math.max(ea, eb);
}

/** An SSE event that ends a stream with an error the `openai` SDK raises (`APIError`). */
export function sseError(message: string, type = 'server_error', code = 'upstream_stream_error'): string {
  return `data: ${JSON.stringify({ error: { message, type, code, param: null } })}\n\n`;
}
