import { indexOf } from './sse.js';

/**
 * Cost needs usage, and a stream carries it only when the request asks (`stream_options.include_usage`). These two
 * helpers, one for both surfaces, ask the upstream for it when the client did not, and take lb's extra usage back out
 * of the stream, so that the client sees exactly the stream it asked for while the engine still reads the usage tail.
 */

const enc = new TextEncoder();
const STREAM_OPTIONS = enc.encode('"stream_options"');
const ASK = enc.encode('"stream_options":{"include_usage":true},');
/** The ask for a body that is `{}`: no trailing comma. */
const ASK_ALONE = ASK.subarray(0, ASK.length - 1);
/** Bodies up to this size are spliced byte by byte in this function; larger ones through `set` (a builtin each). */
const LOOP_SPLICE_MAX = 4096;
const PROMPT_TOKENS = enc.encode('prompt_tokens"');
const NO_CHOICES = enc.encode('"choices":[]');
const USAGE_NULL = enc.encode(',"usage":null');
const EVENT_END = enc.encode('\n\n');

/**
 * A streaming chat or completions request body that asks for usage, and whether lb added the ask. The body's bytes are
 * spliced (`"stream_options":{"include_usage":true},` after its opening brace) rather than re-serialised when it has no
 * `stream_options` of its own; otherwise the parsed body is changed and serialised once. Answers `undefined` when the
 * client asked for usage itself or the body is not a JSON object (then nothing changes). A spliced body answers
 * `json` undefined: parse the new body again when its object is needed. `namesStreamOptions`: whether the object has
 * a top-level `stream_options`, when a scan of the body already knows (spares searching its bytes).
 */
export function askForUsage(
  body: Uint8Array,
  json?: Record<string, any>,
  namesStreamOptions?: boolean,
): { body: Buffer; json: Record<string, any> | undefined } | undefined {
  let i = 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09))
    i++;
  if (body[i] !== 0x7b /* { */) return undefined;
  // Whether the object names `stream_options`: a scan of its top level may have said so already, a parsed body says
  // so; else its bytes are searched (a match inside some value only sends the body the parsed way below).
  const named =
    namesStreamOptions ??
    (json !== undefined ? json.stream_options !== undefined : indexOf(body, STREAM_OPTIONS, i) >= 0);
  if (!named) {
    // `{}` gets no trailing comma: a streaming request always has fields, but stay valid JSON whatever comes.
    let j = i + 1;
    while (j < body.length && (body[j] === 0x20 || body[j] === 0x0a || body[j] === 0x0d || body[j] === 0x09))
      j++;
    const ask = body[j] === 0x7d /* } */ ? ASK_ALONE : ASK;
    const at = i + 1;
    const out = Buffer.allocUnsafe(body.length + ask.length);
    if (out.length <= LOOP_SPLICE_MAX) {
      // A request's body is small: a loop here touches less code than three `subarray`s and `set`s (what a proxy
      // that sat idle between streams pays for, cold, before the upstream request can leave).
      for (let k = 0; k < at; k++) out[k] = body[k]!;
      for (let k = 0; k < ask.length; k++) out[at + k] = ask[k]!;
      for (let k = at; k < body.length; k++) out[k + ask.length] = body[k]!;
    } else {
      out.set(body.subarray(0, at), 0);
      out.set(ask, at);
      out.set(body.subarray(at), at + ask.length);
    }
    return { body: out, json: undefined };
  }
  let j: Record<string, any>;
  try {
    j = json ?? (JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.length).toString('utf8')) as any);
  } catch {
    return undefined;
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j)) return undefined;
  const so = j.stream_options;
  if (so !== null && typeof so === 'object' && so.include_usage === true) return undefined;
  const next = {
    ...j,
    stream_options: { ...(so !== null && typeof so === 'object' ? so : {}), include_usage: true },
  };
  return { body: Buffer.from(JSON.stringify(next)), json: next };
}

/**
 * Takes lb's usage back out of a chunk of a stream whose usage lb asked for (one or more whole SSE events, as the
 * engine frames them): the final usage event (`"choices":[]` with the usage) is dropped and the `,"usage":null` every
 * other chunk then carries is removed. The chunk itself when there is nothing to take out (no copy).
 */
export function dropAskedUsage(chunk: Uint8Array): Uint8Array {
  let out = chunk;
  let at = indexOf(out, PROMPT_TOKENS, 0);
  while (at >= 0) {
    // The event around it: from the end of the previous event to the end of this one.
    let start = 0;
    for (let k = at - 1; k > 0; k--) {
      if (out[k] === 0x0a && out[k - 1] === 0x0a) {
        start = k + 1;
        break;
      }
    }
    const e = indexOf(out, EVENT_END, at);
    const end = e < 0 ? out.length : e + 2;
    const nc = indexOf(out, NO_CHOICES, start);
    if (nc < 0 || nc >= end) break; // usage inside a content chunk: the provider's own, leave it
    const next = new Uint8Array(out.length - (end - start));
    next.set(out.subarray(0, start), 0);
    next.set(out.subarray(end), start);
    out = next;
    at = indexOf(out, PROMPT_TOKENS, start);
  }
  let n = indexOf(out, USAGE_NULL, 0);
  if (n < 0) return out;
  const parts: Uint8Array[] = [];
  let from = 0;
  let len = 0;
  while (n >= 0) {
    parts.push(out.subarray(from, n));
    len += n - from;
    from = n + USAGE_NULL.length;
    n = indexOf(out, USAGE_NULL, from);
  }
  parts.push(out.subarray(from));
  len += out.length - from;
  const joined = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    joined.set(p, o);
    o += p.length;
  }
  return joined;
}

/** The response header of a request's cost, USD (`x-lb-cost: 0.000123`); absent when the model has no price. */
export const COST_HEADER = 'x-lb-cost';

/** USD as `x-lb-cost` shows it: plain decimals (no exponent), at most 10 places, no trailing zeros. */
export function costText(usd: number): string {
  const t = usd.toFixed(10);
  // Below 1e21 `toFixed(10)` always has the point and ten places: trim the zeros by hand (no regex per request).
  let end = t.length;
  if (t.charCodeAt(end - 11) !== DOT) return t;
  while (t.charCodeAt(end - 1) === ZERO) end--;
  if (t.charCodeAt(end - 1) === DOT) end--;
  return end === t.length ? t : t.slice(0, end);
}

const DOT = 46;
const ZERO = 48;
