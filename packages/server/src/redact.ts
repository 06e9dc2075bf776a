import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { maskKey, secretForms } from '@lb/core';
import { clientHeaders, connectionListed } from './http.js';
import type { Sink } from './upstream.js';

/**
 * Keeps the configured secrets (upstream keys, endpoint auth headers, gateway keys, the admin key) out of what an
 * upstream sends back to the client: some upstreams quote the caller's key in a 4xx message or echo it in a header.
 *
 * - Response headers (every status): a value that holds a secret has it masked; debug headers (`x-debug*`,
 *   `server-timing`, `x-powered-by`, Envoy's `x-envoy-*`) and the headers the upstream's `Connection` names
 *   (hop-by-hop, RFC 9110 §7.6.1) are dropped. A length test rules most values out before any search.
 * - Bodies of non-2xx answers, plain or streamed, chunk by chunk ({@link Redactor.sink}): a secret split across chunks
 *   is caught (the last `longest - 1` bytes wait for the next chunk). 2xx bodies are not scanned: the hot path stays
 *   as it is.
 *
 * Each secret is looked for raw, base64/base64url (of the key alone) and URL-encoded ({@link secretForms}), and
 * replaced by its mask (`sk-proj...N0IA`). Secrets shorter than {@link MIN_SECRET} characters are not looked for:
 * they would match ordinary text.
 */
export const MIN_SECRET = 8;

interface Needle {
  text: string;
  bytes: Buffer;
  mask: string;
  maskBytes: Buffer;
}

/**
 * Debug headers an upstream may send that a client has no business with: `x-debug*`, `x-envoy-*`, `x-powered-by`,
 * `x-runtime`, `server-timing`. Decided on character codes: most names are ruled out by their first three.
 */
export function isDebugHeader(k: string): boolean {
  const c = k.charCodeAt(0);
  if (c === 115) return k === 'server-timing';
  if (c !== 120 || k.charCodeAt(1) !== 45) return false;
  switch (k.charCodeAt(2)) {
    case 100:
      return k.startsWith('x-debug');
    case 101:
      return k.startsWith('x-envoy-');
    case 112:
      return k === 'x-powered-by';
    case 114:
      return k === 'x-runtime';
    default:
      return false;
  }
}

/** Header names of an endpoint's own headers whose values are secrets. */
const SECRET_HEADER = /key|token|auth|secret|signature/i;

/** The secrets a server must never hand back: endpoint keys and secret headers, gateway keys, the admin key. */
export function secretsOf(
  endpoints: readonly { apiKey?: string; headers?: Readonly<Record<string, string>> }[],
  other: readonly (string | undefined)[],
): string[] {
  const out = new Set<string>();
  for (const ep of endpoints) {
    if (ep.apiKey) out.add(ep.apiKey);
    const h = ep.headers;
    if (h) for (const k in h) if (SECRET_HEADER.test(k) && h[k]) out.add(h[k].replace(/^Bearer\s+/i, ''));
  }
  for (const s of other) if (s) out.add(s);
  return [...out];
}

/** Masks a set of secrets in response headers and non-2xx bodies. Immutable: a reload builds a new one. */
export class Redactor {
  readonly #needles: Needle[];
  readonly #min: number;
  readonly #max: number;

  constructor(secrets: Iterable<string>) {
    const needles: Needle[] = [];
    const seen = new Set<string>();
    for (const s of secrets) {
      if (s.length < MIN_SECRET) continue;
      const mask = maskKey(s);
      for (const text of secretForms(s)) {
        if (seen.has(text)) continue;
        seen.add(text);
        needles.push({ text, bytes: Buffer.from(text), mask, maskBytes: Buffer.from(mask) });
      }
    }
    // Longest first: at one position the longest form wins.
    needles.sort((a, b) => b.bytes.length - a.bytes.length);
    this.#needles = needles;
    this.#min = needles.length ? Math.min(...needles.map((n) => n.text.length)) : Number.POSITIVE_INFINITY;
    this.#max = needles.length ? needles[0].bytes.length : 0;
  }

  /** True when there is anything to look for. */
  get active(): boolean {
    return this.#needles.length > 0;
  }

  /** `text` with every secret masked. */
  text(text: string): string {
    if (text.length < this.#min) return text;
    let out = text;
    const needles = this.#needles;
    for (let i = 0; i < needles.length; i++) {
      const n = needles[i];
      if (out.length >= n.text.length && out.includes(n.text)) out = out.split(n.text).join(n.mask);
    }
    return out;
  }

  /** Values shorter than this hold no secret. */
  get minLength(): number {
    return this.#min;
  }

  /**
   * The response headers for the client, in one pass over the upstream's ({@link clientHeaders}): hop-by-hop and debug
   * headers dropped, secrets in values masked; then the headers the upstream's `Connection` names dropped. A non-2xx
   * answer whose body will be scanned loses its `content-length` (masking may change the length).
   */
  headers(
    h: IncomingHttpHeaders | Record<string, string>,
    keepLength: boolean,
    status: number,
  ): OutgoingHttpHeaders {
    const out = clientHeaders(h, keepLength && ((status >= 200 && status < 300) || !this.active), this);
    const listed = connectionListed(h);
    if (listed !== undefined) for (const n of listed) if (n !== 'content-length') delete out[n];
    return out;
  }

  /** A sink that masks secrets in the bytes it passes on to `inner`; `inner` itself when there is nothing to mask. */
  sink(inner: Sink): Sink {
    return this.active ? new RedactingSink(inner, this) : inner;
  }

  /**
   * Masks the secrets that start before `cut` in `buf` (each one lies whole in `buf` when `cut` is at most
   * `buf.length - (longest - 1)`). Returns the bytes to pass on and how much of `buf` they stand for (at least `cut`,
   * more when a masked secret ran past it).
   */
  mask(buf: Buffer, cut: number): { out: Buffer; used: number } {
    const needles = this.#needles;
    let parts: Buffer[] | undefined;
    let last = 0;
    for (;;) {
      let at = -1;
      let hit: Needle | undefined;
      for (const n of needles) {
        const i = buf.indexOf(n.bytes, last);
        if (i >= 0 && (at < 0 || i < at)) {
          at = i;
          hit = n;
        }
      }
      if (hit === undefined || at >= cut) break;
      (parts ??= []).push(buf.subarray(last, at), hit.maskBytes);
      last = at + hit.bytes.length;
    }
    const used = Math.max(cut, last);
    if (parts === undefined) return { out: buf.subarray(0, used), used };
    parts.push(buf.subarray(last, used));
    return { out: Buffer.concat(parts), used };
  }

  /** The longest form of any secret, bytes. */
  get longest(): number {
    return this.#max;
  }
}

/** Passes a body on with the secrets masked, holding back only the few bytes a secret split across chunks needs. */
class RedactingSink implements Sink {
  #tail: Buffer | undefined;
  constructor(
    readonly inner: Sink,
    readonly redactor: Redactor,
  ) {}

  data(chunk: Buffer): boolean {
    const buf = this.#tail === undefined ? chunk : Buffer.concat([this.#tail, chunk]);
    const cut = buf.length - (this.redactor.longest - 1);
    if (cut <= 0) {
      this.#tail = Buffer.from(buf);
      return true;
    }
    const { out, used } = this.redactor.mask(buf, cut);
    this.#tail = used < buf.length ? Buffer.from(buf.subarray(used)) : undefined;
    return out.length ? this.inner.data(out) : true;
  }

  end(): void {
    const tail = this.#tail;
    this.#tail = undefined;
    if (tail !== undefined && tail.length) this.inner.data(this.redactor.mask(tail, tail.length).out);
    this.inner.end();
  }

  error(err: Error): void {
    this.#tail = undefined;
    this.inner.error(err);
  }
}
