/** Headers that concern one connection only (RFC 9110 §7.6.1), plus `host`: never forwarded by a proxy. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** Client credentials: the gateway's own key must never reach an upstream. */
const CREDENTIALS = new Set(['authorization', 'api-key', 'x-api-key', 'cookie']);

interface StripState {
  out: Record<string, string>;
  creds: boolean;
  length: boolean;
  /** Headers the `connection` header names (hop-by-hop too). */
  named: string | undefined;
}

function addHeader(this: StripState, value: string, key: string): void {
  const k = key.toLowerCase();
  if (HOP_BY_HOP.has(k)) {
    if (k === 'connection') this.named = this.named ? `${this.named},${value}` : value;
    return;
  }
  if (this.creds && CREDENTIALS.has(k)) return;
  if (this.length && k === 'content-length') return;
  const out = this.out;
  out[k] = k in out ? `${out[k]}, ${value}` : value;
}

/** Options of {@link stripHopByHop}. */
export interface StripOptions {
  /** Also drop credentials (`authorization`, `api-key`, `x-api-key`, `cookie`). Default true. */
  credentials?: boolean;
  /** Also drop `content-length` (set it when the body will be rewritten). Default false. */
  contentLength?: boolean;
}

/**
 * A copy of `headers` with lower-case keys and one string per header, without hop-by-hop headers (`connection` and
 * the headers it names, `keep-alive`, `te`, `transfer-encoding`, `upgrade`, `proxy-*`, `host`) and, by default,
 * without the client's credentials. Accepts Node's `IncomingHttpHeaders`, a plain record or a WHATWG `Headers`.
 *
 * @example
 * const headers = stripHopByHop(req.headers); // Node request → safe to forward
 */
export function stripHopByHop(
  headers:
    | Record<string, string | string[] | number | undefined | null>
    | { forEach(cb: (value: string, key: string) => void): void }
    | undefined,
  options?: StripOptions,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  // One state object, no closure per call: `Headers.forEach` takes it as `this`.
  const st: StripState = {
    out,
    creds: options?.credentials ?? true,
    length: options?.contentLength ?? false,
    named: undefined,
  };
  if (typeof Headers !== 'undefined' && headers instanceof Headers) headers.forEach(addHeader, st);
  else if (typeof (headers as { forEach?: unknown }).forEach === 'function' && !Array.isArray(headers)) {
    (headers as { forEach(cb: (value: string, key: string) => void): void }).forEach((v, k) =>
      addHeader.call(st, v, k),
    );
  } else {
    for (const key in headers as Record<string, unknown>) {
      const v = (headers as Record<string, unknown>)[key];
      if (v === undefined || v === null) continue;
      addHeader.call(
        st,
        Array.isArray(v) ? v.join(key.toLowerCase() === 'set-cookie' ? '; ' : ', ') : String(v),
        key,
      );
    }
  }
  const named = st.named;
  if (named) for (const n of named.split(',')) delete out[n.trim().toLowerCase()];
  return out;
}
