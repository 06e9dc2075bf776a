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
  const creds = options?.credentials ?? true;
  const length = options?.contentLength ?? false;
  let named: string | undefined;
  const add = (key: string, value: string) => {
    const k = key.toLowerCase();
    if (HOP_BY_HOP.has(k)) {
      if (k === 'connection') named = named ? `${named},${value}` : value;
      return;
    }
    if (creds && CREDENTIALS.has(k)) return;
    if (length && k === 'content-length') return;
    out[k] = k in out ? `${out[k]}, ${value}` : value;
  };
  if (typeof (headers as { forEach?: unknown }).forEach === 'function' && !Array.isArray(headers)) {
    (headers as { forEach(cb: (value: string, key: string) => void): void }).forEach((v, k) => add(k, v));
  } else {
    for (const key in headers as Record<string, unknown>) {
      const v = (headers as Record<string, unknown>)[key];
      if (v === undefined || v === null) continue;
      add(key, Array.isArray(v) ? v.join(key.toLowerCase() === 'set-cookie' ? '; ' : ', ') : String(v));
    }
  }
  if (named) for (const n of named.split(',')) delete out[n.trim().toLowerCase()];
  return out;
}
