import type { Usage } from '@lb/core';

const encoder = new TextEncoder();
const PROMPT_TOKENS = encoder.encode('"prompt_tokens"');
const COMPLETION_TOKENS = encoder.encode('"completion_tokens"');
const TOTAL_TOKENS = encoder.encode('"total_tokens"');
const ERROR_DATA = encoder.encode('data: {"error"');
const ERROR_TYPE = encoder.encode('event: error');

/**
 * How an error event starts, in each form {@link errorEventAt} finds: for a search of one's own (lb-server runs
 * Buffer's native one on every chunk).
 */
export const ERROR_EVENT_MARKS: readonly Uint8Array[] = Object.freeze([ERROR_DATA, ERROR_TYPE]);

/**
 * Where an error event starts in `chunk` of an OpenAI-dialect event stream (`data: {"error":…}`, or the Responses
 * API's `event: error`), or -1: an upstream reporting a failure inside a stream it had begun.
 */
export function errorEventAt(chunk: Uint8Array): number {
  const at = find(chunk, ERROR_DATA, 0, chunk.length);
  const typed = find(chunk, ERROR_TYPE, 0, at < 0 ? chunk.length : at);
  return typed >= 0 ? typed : at;
}

/** True when `chunk` holds an error event ({@link errorEventAt}). */
export function hasErrorEvent(chunk: Uint8Array): boolean {
  return errorEventAt(chunk) >= 0;
}

/** True when `chunk` holds a `"prompt_tokens"` key: the chunk of an OpenAI answer (JSON or SSE) that carries usage. */
export function hasUsage(chunk: Uint8Array): boolean {
  return find(chunk, PROMPT_TOKENS, 0, chunk.length) >= 0;
}

/**
 * Token usage read from the bytes of an OpenAI answer, JSON or SSE, without parsing it: the `usage` object around the
 * last `"prompt_tokens"`. `last` is the chunk that carried it (or the final chunk), `prev` the chunk before, for a
 * usage object split across the two. Undefined when there is none.
 *
 * @example
 * usageFromBytes(new TextEncoder().encode('{"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}'));
 * // { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 }
 */
export function usageFromBytes(last: Uint8Array, prev?: Uint8Array): Usage | undefined {
  let buf = last;
  let at = lastIndexOf(buf, PROMPT_TOKENS);
  if (at < 0 && prev !== undefined && prev.length > 0) {
    buf = new Uint8Array(prev.length + last.length);
    buf.set(prev, 0);
    buf.set(last, prev.length);
    at = lastIndexOf(buf, PROMPT_TOKENS);
  }
  if (at < 0) return undefined;
  // The usage object's fields sit within a few dozen bytes of "prompt_tokens".
  const from = Math.max(0, at - 64);
  const to = Math.min(buf.length, at + 160);
  const p = intAfter(buf, PROMPT_TOKENS, at, to);
  if (p === undefined) return undefined;
  const usage: Usage = { prompt_tokens: p };
  const c = intAfter(buf, COMPLETION_TOKENS, from, to);
  if (c !== undefined) usage.completion_tokens = c;
  const t = intAfter(buf, TOTAL_TOKENS, from, to);
  if (t !== undefined) usage.total_tokens = t;
  return usage;
}

/** The integer after the first `key` (a JSON key, quotes included) in `buf[from, to)` then `:`, or undefined. */
function intAfter(buf: Uint8Array, key: Uint8Array, from: number, to: number): number | undefined {
  const at = find(buf, key, from, to);
  if (at < 0) return undefined;
  let i = at + key.length;
  while (i < to && isSpace(buf[i])) i++;
  if (i >= to || buf[i] !== 58) return undefined;
  i++;
  while (i < to && isSpace(buf[i])) i++;
  let n = 0;
  const start = i;
  while (i < to && buf[i] >= 48 && buf[i] <= 57) n = n * 10 + (buf[i++] - 48);
  return i > start ? n : undefined;
}

/** First `key` in `buf[from, to)`, or -1. In JS: for a few hundred bytes cheaper than a native call. */
function find(buf: Uint8Array, key: Uint8Array, from: number, to: number): number {
  const k0 = key[0];
  const end = to - key.length;
  outer: for (let i = from; i <= end; i++) {
    if (buf[i] !== k0) continue;
    for (let j = 1; j < key.length; j++) if (buf[i + j] !== key[j]) continue outer;
    return i;
  }
  return -1;
}

/** Last `key` in `buf`, or -1 (usage sits at the end of an answer: the scan from the end stops early). */
function lastIndexOf(buf: Uint8Array, key: Uint8Array): number {
  const k0 = key[0];
  outer: for (let i = buf.length - key.length; i >= 0; i--) {
    if (buf[i] !== k0) continue;
    for (let j = 1; j < key.length; j++) if (buf[i + j] !== key[j]) continue outer;
    return i;
  }
  return -1;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}
