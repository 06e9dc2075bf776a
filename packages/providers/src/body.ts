const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 encodes a string (shared encoder). */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** UTF-8 decodes bytes (shared decoder). */
export function fromUtf8(b: Uint8Array): string {
  return decoder.decode(b);
}

const QUOTE = 34;
const BACKSLASH = 92;
const M = [109, 111, 100, 101, 108]; // "model"

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/** End (exclusive) of the JSON string starting at `i` (a quote), or -1. */
function stringEnd(b: Uint8Array, i: number): number {
  for (let j = i + 1; j < b.length; j++) {
    const c = b[j];
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  return -1;
}

/** [start, end) of the top-level `"model"` string value in a JSON object's bytes, or undefined. */
function findModelValue(b: Uint8Array): [number, number] | undefined {
  let first = 0;
  while (first < b.length && isSpace(b[first])) first++;
  if (b[first] !== 123) return undefined;
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c === QUOTE) {
      const end = stringEnd(b, i);
      if (end < 0) return undefined;
      if (depth === 1 && expectKey) {
        expectKey = false;
        if (
          end - i === 7 &&
          b[i + 1] === M[0] &&
          b[i + 2] === M[1] &&
          b[i + 3] === M[2] &&
          b[i + 4] === M[3] &&
          b[i + 5] === M[4]
        ) {
          let k = end;
          while (k < b.length && isSpace(b[k])) k++;
          if (b[k] !== 58) return undefined; // ':'
          k++;
          while (k < b.length && isSpace(b[k])) k++;
          if (b[k] !== QUOTE) return undefined;
          const vEnd = stringEnd(b, k);
          return vEnd < 0 ? undefined : [k, vEnd];
        }
      }
      i = end - 1;
    } else if (c === 123 || c === 91) {
      depth++;
      if (c === 123 && depth === 1) expectKey = true;
    } else if (c === 125 || c === 93) {
      depth--;
    } else if (c === 44 && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

/**
 * The request body with its top-level `model` replaced by `model`. The other bytes are kept exactly: the new value
 * is spliced in place, without parsing or re-serialising the body. Falls back to serialising `{ ...json, model }`
 * only when the raw body has no top-level string `model` to splice. Returns the original bytes when the model is
 * already `model`, or when there is nothing to rewrite.
 *
 * @example
 * replaceModel(utf8('{"model":"gpt-4o","messages":[]}'), { model: 'gpt-4o', messages: [] }, 'gpt-4o-2024-08-06');
 * // → bytes of '{"model":"gpt-4o-2024-08-06","messages":[]}'
 */
export function replaceModel(
  body: Uint8Array | undefined,
  json: Record<string, unknown> | undefined,
  model: string,
): Uint8Array | undefined {
  if (json && json.model === model) return body;
  if (body && body.length > 0) {
    const at = findModelValue(body);
    if (at) {
      const value = encoder.encode(JSON.stringify(model));
      const out = new Uint8Array(body.length - (at[1] - at[0]) + value.length);
      out.set(body.subarray(0, at[0]), 0);
      out.set(value, at[0]);
      out.set(body.subarray(at[1]), at[0] + value.length);
      return out;
    }
  }
  if (!json) return body;
  return encoder.encode(JSON.stringify({ ...json, model }));
}

const NAME_MODEL = encoder.encode('name="model"');
const CRLFCRLF = encoder.encode('\r\n\r\n');

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  const last = hay.length - needle.length;
  outer: for (let i = hay.indexOf(first, from); i >= 0 && i <= last; i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * A `multipart/form-data` body (audio transcriptions, image edits) with its `model` field's value replaced by
 * `model`; the file parts are copied, not parsed. Returns the body itself when it has no `model` field, or when
 * `contentType` is not multipart.
 *
 * @example
 * replaceMultipartModel(body, req.headers['content-type'], 'whisper-large-v3');
 */
export function replaceMultipartModel(
  body: Uint8Array | undefined,
  contentType: string | undefined,
  model: string,
): Uint8Array | undefined {
  if (!body || !contentType || !contentType.toLowerCase().startsWith('multipart/form-data')) return body;
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) return body;
  const delimiter = encoder.encode(`\r\n--${m[1] ?? m[2]}`);
  // Walk the parts (a delimiter cannot occur inside part data) and read only their headers.
  let pos = indexOf(body, delimiter.subarray(2), 0);
  let start = -1;
  let end = -1;
  while (pos >= 0) {
    const headerStart = pos + delimiter.length - 2;
    const headerEnd = indexOf(body, CRLFCRLF, headerStart);
    if (headerEnd < 0) return body;
    const at = indexOf(body.subarray(headerStart, headerEnd), NAME_MODEL, 0);
    const next = indexOf(body, delimiter, headerEnd);
    const before = at > 0 ? body[headerStart + at - 1] : 0;
    if (at >= 0 && (before === 32 || before === 59 || before === 9)) {
      start = headerEnd + 4;
      end = next;
      break;
    }
    pos = next < 0 ? -1 : next + 2;
  }
  if (start < 0 || end < 0) return body;
  const value = encoder.encode(model);
  const out = new Uint8Array(body.length - (end - start) + value.length);
  out.set(body.subarray(0, start), 0);
  out.set(value, start);
  out.set(body.subarray(end), start + value.length);
  return out;
}
