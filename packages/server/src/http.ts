import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { errorFromStatus, isLbError, type LbError } from '@lb/core';
import { errorHeaders } from '@lb/exchange';
import { isDebugHeader } from './redact.js';

/** Headers never forwarded in either direction (hop-by-hop), plus the ones we set ourselves. */
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
  'http2-settings',
]);

/** Client headers dropped before the upstream call: hop-by-hop, our gateway auth, and the client's account scoping. */
const DROP_UPSTREAM = new Set([
  ...HOP,
  'authorization',
  'api-key',
  'x-api-key',
  'openai-organization',
  'openai-project',
  'accept-encoding',
  'cookie',
  // lb's own request header (routing), never the upstream's business
  'x-lb-tags',
  'x-lb-fallbacks',
  'x-lb-endpoint',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
]);

/**
 * The headers a message's `Connection` header names (RFC 9110 §7.6.1: hop-by-hop, never forwarded), or undefined for
 * the usual `keep-alive` / `close` (no set made).
 */
export function connectionListed(h: IncomingHttpHeaders | Record<string, string>): Set<string> | undefined {
  const raw = (h as Record<string, string | string[] | undefined>).connection;
  const c = Array.isArray(raw) ? raw.join(',') : raw;
  if (typeof c !== 'string' || c === 'keep-alive' || c === 'close') return undefined;
  const names = c
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '' && t !== 'keep-alive' && t !== 'close');
  return names.length ? new Set(names) : undefined;
}

/** Lower-case client headers to forward upstream (string values only). */
export function upstreamHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  const listed = connectionListed(h);
  for (const k in h) {
    if (DROP_UPSTREAM.has(k) || listed?.has(k)) continue;
    const v = h[k];
    if (typeof v === 'string') out[k] = v;
    else if (Array.isArray(v)) out[k] = v.join(', ');
  }
  return out;
}

/** What masks secrets in header values ({@link Redactor} of `redact.ts`). */
export interface HeaderScrubber {
  /** Values shorter than this hold no secret. */
  readonly minLength: number;
  text(value: string): string;
}

/**
 * Upstream response headers to send to the client. `keepLength` false drops content-length (body rewritten/streamed).
 * With `secrets`, in the same pass: debug headers are dropped and secrets in values masked.
 */
export function clientHeaders(
  h: IncomingHttpHeaders | Record<string, string>,
  keepLength: boolean,
  secrets?: HeaderScrubber,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const min = secrets === undefined ? Number.POSITIVE_INFINITY : secrets.minLength;
  for (const k in h) {
    if (HOP.has(k) && !(keepLength && k === 'content-length')) continue;
    const v = (h as IncomingHttpHeaders)[k];
    if (v === undefined) continue;
    if (secrets !== undefined) {
      if (isDebugHeader(k)) continue;
      if (typeof v === 'string') {
        out[k] = v.length >= min ? secrets.text(v) : v;
        continue;
      }
      if (Array.isArray(v)) {
        out[k] = v.map((x) => secrets.text(x));
        continue;
      }
    }
    out[k] = v;
  }
  return out;
}

const JSON_HEADERS = { 'content-type': 'application/json' } as const;

/** Sends a JSON body. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers?: OutgoingHttpHeaders,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(
    status,
    headers
      ? { ...JSON_HEADERS, ...headers, 'content-length': Buffer.byteLength(text) }
      : { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text) },
  );
  res.end(text);
}

/**
 * Sends an error in OpenAI's shape (`{ error: { message, type, code, param } }`). 429 always carries
 * `Retry-After` (seconds, at least 1) and `retry-after-ms`; other statuses carry them when the wait is known.
 */
export function sendError(res: ServerResponse, err: LbError, extra?: OutgoingHttpHeaders): void {
  // Retry-After as the adapter sends it too (`@lb/exchange`'s `errorHeaders`).
  const headers = errorHeaders(err, 0, { ...extra } as Record<string, string | number>);
  sendJson(res, err.status, err.toOpenAIError(), headers);
}

/** A client limit's `x-ratelimit-*-requests` headers, added to `h` (a new object when not given). */
export function limitHeaders(
  limit: number,
  remaining: number,
  h: OutgoingHttpHeaders = {},
): OutgoingHttpHeaders {
  h['x-ratelimit-limit-requests'] = limit;
  h['x-ratelimit-remaining-requests'] = remaining;
  return h;
}

/** Shorthand: an OpenAI-shaped error from a status and message. */
export function sendStatus(
  res: ServerResponse,
  status: number,
  message: string,
  retryAfterMs?: number,
  extra?: OutgoingHttpHeaders,
): void {
  sendError(res, errorFromStatus(status, message, retryAfterMs), extra);
}

/** Any thrown value as an LbError (unknown errors become an opaque 500). */
export function asLbError(e: unknown): LbError {
  if (isLbError(e)) return e;
  return errorFromStatus(500, 'Internal gateway error');
}

/** The key a client presented: `Authorization: Bearer …`, `api-key` or `x-api-key`. */
export function clientKeyOf(req: IncomingMessage): string | undefined {
  const h = req.headers;
  const auth = h.authorization;
  if (auth !== undefined) {
    const i = auth.indexOf(' ');
    return i >= 0 && auth.slice(0, i).toLowerCase() === 'bearer' ? auth.slice(i + 1).trim() : auth.trim();
  }
  const k = h['api-key'] ?? h['x-api-key'];
  return typeof k === 'string' ? k : undefined;
}

/** Bytes of an oversized body read and thrown away (so the client can read its 413) before the socket is cut. */
const DISCARD_LIMIT = 64 * 1024 * 1024;

/** Where `readBody` delivers: the body (null when over the limit), or the error that ended it. */
export interface BodySink {
  onBody(body: Buffer | null): void;
  onBodyError(err: Error): void;
}

/**
 * Reads the whole body into one Buffer, up to `limit` bytes, and hands it to `sink` as soon as it is whole: with its
 * last byte when a `content-length` says how many there are, else from the stream's 'end' event (no promise: a proxy
 * goes on to route and send in the same step). `null` when over the limit: the rest is read and thrown away (up to
 * 64 MiB more, then the connection is cut) so that the client gets to read the 413.
 */
export function readBody(req: IncomingMessage, limit: number, sink: BodySink): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const overflow = () => {
    done = true;
    chunks.length = 0;
    let discarded = 0;
    req.removeAllListeners('data');
    req.on('data', (c: Buffer) => {
      discarded += c.length;
      if (discarded > DISCARD_LIMIT) req.destroy();
    });
    sink.onBody(null);
  };
  const cl = req.headers['content-length'];
  const expected = cl === undefined ? -1 : Number(cl);
  if (expected > limit) {
    overflow();
    return;
  }
  const whole = () => {
    done = true;
    sink.onBody(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
  };
  req.on('data', (c: Buffer) => {
    if (done) return;
    size += c.length;
    if (size > limit) {
      overflow();
      return;
    }
    chunks.push(c);
    // The last byte the client announced: no need to wait for 'end', a tick later. A new upstream connection gets the
    // request written at once; on a reused one undici writes it in the loop's check phase anyway (its idle-socket
    // validation), so there the gain is nil: bench/results/history.md, 2026-12-07, fifth session.
    if (size === expected) whole();
  });
  req.on('end', () => {
    if (!done) whole();
  });
  req.on('error', (e) => {
    if (done) return;
    done = true;
    sink.onBodyError(e);
  });
  req.on('close', () => {
    if (done) return;
    done = true;
    sink.onBodyError(new Error('the client closed the connection while sending the body'));
  });
}
