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
const PASS: GateVerdict = { kind: 'pass' };
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
