import { FEATURE_PARAMS } from '@lb/providers';

/**
 * A bounded, validating scan of a JSON request body for the fields the proxy routes on (`model`, `stream`, and
 * whether a parameter some provider cannot honour is there), so that the body need not be parsed into objects per
 * request. Strict: it answers only for bodies `JSON.parse` accepts
 * and that are objects whose top-level keys carry no escapes; for anything else it returns undefined and the caller
 * falls back to `JSON.parse` (which then produces the same result or error as before).
 */

/**
 * What the scan found at the top level. `model` is undefined when absent; `stream` is true only for `true`;
 * `featureParams`: one of `@lb/providers`' `FEATURE_PARAMS` is there (`n`, `logprobs`…), so the body may ask for a
 * feature some provider lacks.
 */
export interface BodyFields {
  model: string | undefined;
  stream: boolean;
  featureParams: boolean;
  /**
   * The completion budget (`max_completion_tokens`, else `max_tokens`, else `max_output_tokens`) times `n`, when
   * they are plain integers; 0 otherwise. With the body's size it makes a token estimate without parsing.
   */
  completionTokens: number;
  /** A top-level `stream_options` is there (a stream's usage ask then goes through the parsed body). */
  streamOptions: boolean;
}

/** The one result object `scanBody` fills: read it before the next call. */
const FIELDS: BodyFields = {
  model: undefined,
  stream: false,
  featureParams: false,
  completionTokens: 0,
  streamOptions: false,
};

function found(
  model: string | undefined,
  stream: boolean,
  featureParams: boolean,
  maxCompletion: number,
  maxTokens: number,
  maxOutput: number,
  n: number,
  streamOptions: boolean,
): BodyFields {
  FIELDS.model = model;
  FIELDS.streamOptions = streamOptions;
  FIELDS.stream = stream;
  FIELDS.featureParams = featureParams;
  FIELDS.completionTokens = (maxCompletion || maxTokens || maxOutput) * n;
  return FIELDS;
}

/**
 * A completion budget's value at `b[s..e)` (a JSON value `value` validated): a positive integer below 10⁹ as
 * `JSON.parse` reads it (`1e3` and `1000.0` too), else 0. Plain digits are read here; other number forms by `Number`.
 */
function intAt(b: Uint8Array, s: number, e: number): number {
  if (e - s <= 9) {
    let v = 0;
    let j = s;
    for (; j < e; j++) {
      const c = b[j];
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
    }
    if (j === e) return v;
  }
  const c = b[s];
  if (c !== 0x2d && (c < 0x30 || c > 0x39)) return 0; // not a number
  const n = Number(Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('latin1'));
  return Number.isInteger(n) && n > 0 && n < 1e9 ? n : 0;
}

const FEATURE_KEYS: readonly Uint8Array[] = FEATURE_PARAMS.map((k) => Buffer.from(k));

/** Which of `list` holds exactly the bytes `b[s..e)`, or -1: a few short byte compares, no decoding. */
function indexOfBytes(list: readonly Uint8Array[], b: Uint8Array, s: number, e: number): number {
  const len = e - s;
  for (let k = 0; k < list.length; k++) {
    const m = list[k];
    if (m.length !== len) continue;
    let j = 0;
    while (j < len && m[j] === b[s + j]) j++;
    if (j === len) return k;
  }
  return -1;
}

/**
 * Model names seen lately, as bytes and as strings. A proxy sees the same few models again and again: comparing a
 * dozen bytes in JS finds the string without decoding, allocating or calling into C++ (which, on a proxy idle for a
 * while, cost ~17 µs for one short model name).
 */
const MODEL_SLOTS = 16;
const MAX_CACHED_MODEL = 128;
const modelBytes: Uint8Array[] = [];
const modelStrings: string[] = [];
let nextSlot = 0;

function modelAt(b: Uint8Array, s: number, e: number): string {
  const k = indexOfBytes(modelBytes, b, s, e);
  if (k >= 0) return modelStrings[k];
  const len = e - s;
  const str = Buffer.from(b.buffer, b.byteOffset + s, len).toString('utf8');
  if (len <= MAX_CACHED_MODEL) {
    // A copy: the body's bytes may sit in a pooled buffer that gets reused.
    modelBytes[nextSlot] = Uint8Array.prototype.slice.call(b, s, e);
    modelStrings[nextSlot] = str;
    nextSlot = (nextSlot + 1) % MODEL_SLOTS;
  }
  return str;
}

const Q = 0x22; // "
const BS = 0x5c; // \\

/**
 * Scans `b` (UTF-8 bytes). Undefined: not a plain object, not valid JSON, or a case left to `JSON.parse`. The result
 * is one shared object, overwritten by the next call.
 */
export function scanBody(b: Uint8Array): BodyFields | undefined {
  const n = b.length;
  let i = ws(b, 0, n);
  if (b[i] !== 0x7b) return undefined;
  i = ws(b, i + 1, n);
  let model: string | undefined;
  let stream = false;
  let featureParams = false;
  let maxCompletion = 0;
  let maxTokens = 0;
  let maxOutput = 0;
  let choices = 1;
  let streamOptions = false;
  if (b[i] === 0x7d)
    return ws(b, i + 1, n) === n ? found(model, stream, false, 0, 0, 0, 1, false) : undefined;
  for (;;) {
    if (b[i] !== Q) return undefined;
    const ks = i + 1;
    const ke = str(b, ks, n);
    if (ke < 0) return undefined;
    i = ws(b, ke + 1, n);
    if (b[i] !== 0x3a) return undefined;
    i = ws(b, i + 1, n);
    const vs = i;
    i = value(b, i, n, 0);
    if (i < 0) return undefined;
    const klen = ke - ks;
    if (klen === 5 && isKey(b, ks, 'model')) {
      // Only a plain string without escapes is read here; anything else goes to JSON.parse.
      if (b[vs] !== Q || hasEscape(b, vs + 1, i - 1)) return undefined;
      model = modelAt(b, vs + 1, i - 1);
    } else if (klen === 6 && isKey(b, ks, 'stream')) {
      stream = i - vs === 4 && b[vs] === 0x74; // true (value() checked the literal)
    } else if (klen === 6 && isKey(b, ks, 'models')) {
      // A per-request fallback chain (`models: [...]`): parsed and stripped by the proxy.
      return undefined;
    } else if (hasEscape(b, ks, ke)) {
      // An escaped key might spell "model" or "stream".
      return undefined;
    } else {
      if (klen === 10 && isKey(b, ks, 'max_tokens')) maxTokens = intAt(b, vs, i);
      else if (klen === 21 && isKey(b, ks, 'max_completion_tokens')) maxCompletion = intAt(b, vs, i);
      else if (klen === 17 && isKey(b, ks, 'max_output_tokens')) maxOutput = intAt(b, vs, i);
      else if (klen === 1 && b[ks] === 0x6e) choices = Math.max(1, intAt(b, vs, i));
      else if (klen === 14 && isKey(b, ks, 'stream_options')) streamOptions = true;
      if (!featureParams && indexOfBytes(FEATURE_KEYS, b, ks, ke) >= 0) featureParams = true;
    }
    i = ws(b, i, n);
    if (b[i] === 0x2c) {
      i = ws(b, i + 1, n);
      continue;
    }
    if (b[i] !== 0x7d) return undefined;
    return ws(b, i + 1, n) === n
      ? found(model, stream, featureParams, maxCompletion, maxTokens, maxOutput, choices, streamOptions)
      : undefined;
  }
}

function hasEscape(b: Uint8Array, s: number, e: number): boolean {
  for (let j = s; j < e; j++) if (b[j] === BS) return true;
  return false;
}

function isKey(b: Uint8Array, at: number, k: string): boolean {
  for (let j = 0; j < k.length; j++) if (b[at + j] !== k.charCodeAt(j)) return false;
  return true;
}

function ws(b: Uint8Array, i: number, n: number): number {
  while (i < n) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** From just after an opening quote: the index of the closing quote, or -1. */
function str(b: Uint8Array, i: number, n: number): number {
  while (i < n) {
    const c = b[i];
    if (c === Q) return i;
    if (c < 0x20) return -1;
    if (c === BS) {
      const e = b[i + 1];
      if (e === 0x75) {
        for (let j = 2; j < 6; j++) if (!isHex(b[i + j])) return -1;
        i += 6;
        continue;
      }
      if (
        e !== Q &&
        e !== BS &&
        e !== 0x2f &&
        e !== 0x62 &&
        e !== 0x66 &&
        e !== 0x6e &&
        e !== 0x72 &&
        e !== 0x74
      )
        return -1;
      i += 2;
      continue;
    }
    i++;
  }
  return -1;
}

function isHex(c: number | undefined): boolean {
  return (
    c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46))
  );
}

const MAX_DEPTH = 512;

/** Skips one JSON value at `i` (no leading whitespace): the index after it, or -1. */
function value(b: Uint8Array, i: number, n: number, depth: number): number {
  const c = b[i];
  if (c === Q) {
    const e = str(b, i + 1, n);
    return e < 0 ? -1 : e + 1;
  }
  if (c === 0x7b || c === 0x5b) {
    if (depth >= MAX_DEPTH) return -1;
    const close = c === 0x7b ? 0x7d : 0x5d;
    i = ws(b, i + 1, n);
    if (b[i] === close) return i + 1;
    for (;;) {
      if (c === 0x7b) {
        if (b[i] !== Q) return -1;
        const e = str(b, i + 1, n);
        if (e < 0) return -1;
        i = ws(b, e + 1, n);
        if (b[i] !== 0x3a) return -1;
        i = ws(b, i + 1, n);
      }
      i = value(b, i, n, depth + 1);
      if (i < 0) return -1;
      i = ws(b, i, n);
      if (b[i] === 0x2c) {
        i = ws(b, i + 1, n);
        continue;
      }
      return b[i] === close ? i + 1 : -1;
    }
  }
  if (c === 0x74) return lit(b, i, 'true');
  if (c === 0x66) return lit(b, i, 'false');
  if (c === 0x6e) return lit(b, i, 'null');
  return num(b, i, n);
}

function lit(b: Uint8Array, i: number, w: string): number {
  return isKey(b, i, w) ? i + w.length : -1;
}

function digits(b: Uint8Array, i: number, n: number): number {
  const s = i;
  while (i < n && b[i] >= 0x30 && b[i] <= 0x39) i++;
  return i > s ? i : -1;
}

/** -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
function num(b: Uint8Array, i: number, n: number): number {
  if (b[i] === 0x2d) i++;
  if (b[i] === 0x30) i++;
  else if (b[i] >= 0x31 && b[i] <= 0x39) i = digits(b, i, n);
  else return -1;
  if (b[i] === 0x2e) {
    i = digits(b, i + 1, n);
    if (i < 0) return -1;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    i = digits(b, i, n);
  }
  return i;
}
