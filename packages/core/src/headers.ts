/** Anything that carries HTTP headers: a WHATWG `Headers`, or Node's/undici's plain header object. */
export type HeadersLike =
  | { get(name: string): string | null }
  | Record<string, string | string[] | number | undefined | null>;

/** Reads one header (case-insensitively for WHATWG `Headers`; plain objects must use lower-case keys, as Node does). */
export function getHeader(headers: HeadersLike | undefined | null, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const v = (headers as { get(name: string): string | null }).get(name);
    return v ?? undefined;
  }
  const v = (headers as Record<string, unknown>)[name];
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v[0] as string | undefined;
  return String(v);
}

/**
 * The tags a request asks for in its `x-lb-tags` header (`eu, fast`; repeated headers arrive joined by commas, or
 * as a list), for `RouteRequest.tags`. lb-server and the openai adapter read the header with it.
 */
export function parseTags(value: string | readonly string[]): string[] {
  const out: string[] = [];
  for (const part of typeof value === 'string' ? [value] : value)
    for (const t of part.split(',')) {
      const s = t.trim();
      if (s) out.push(s);
    }
  return out;
}
