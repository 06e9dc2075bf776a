import type { DialectRequest } from '../types.js';

/**
 * Upstream headers: the client's (minus what the transport sets), then the endpoint's configured `headers`, then
 * the dialect's own (auth, content type), which always win.
 */
export function upstreamHeaders(
  req: DialectRequest,
  own: Record<string, string>,
  dropEncoding: boolean,
): Record<string, string> {
  const out: Record<string, string> = {};
  const client = req.headers;
  for (const k in client) {
    if (k === 'content-length' || k === 'host' || (dropEncoding && k === 'accept-encoding')) continue;
    out[k] = client[k];
  }
  const ep = req.endpoint.headers;
  for (const k in ep) out[k.toLowerCase()] = ep[k];
  for (const k in own) out[k] = own[k];
  return out;
}

/** Joins a base URL and a path that starts with `/`. */
export function join(base: string, path: string): string {
  return base.endsWith('/') ? base + path.slice(1) : base + path;
}
