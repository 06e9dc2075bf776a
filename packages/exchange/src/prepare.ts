import type { AttemptContext } from '@lb/core';
import type { Dialect, DialectRequest } from '@lb/providers';

/** The request to send upstream for one attempt, as a {@link Transport} takes it (less its timeout). */
export interface PreparedRequest {
  origin: string;
  path: string;
  method: string;
  headers: Record<string, string>;
  body: Uint8Array | string | undefined;
}

/**
 * The upstream request of one attempt, through the endpoint's dialect: every provider, OpenAI-compatible included
 * (`openaiDialect`: lower-case header keys, the model spliced into the body bytes, never a re-serialisation). Both
 * surfaces build their requests here.
 */
export function prepareUpstream(dialect: Dialect, req: DialectRequest): PreparedRequest {
  const up = dialect.prepare(req);
  const url = up.url;
  // origin | path, without a URL parse: the path starts at the first '/' or '?' after the authority.
  const from = url.indexOf('://') + 3;
  let cut = url.length;
  for (let i = from; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */) {
      cut = i;
      break;
    }
  }
  const rest = url.slice(cut);
  return {
    origin: url.slice(0, cut),
    path: rest === '' ? '/' : rest[0] === '?' ? `/${rest}` : rest,
    method: up.method,
    headers: up.headers,
    body: up.body,
  };
}

/**
 * How long an attempt may wait, ms: the smaller of its own timeout and what is left of the request's deadline
 * (`ctx.deadline`, epoch ms), at least 1. `own` 0 or undefined: the deadline alone. So a request with a 1 s deadline
 * against an endpoint whose timeout is 4 s ends at its deadline, not the endpoint's timeout.
 */
export function attemptTimeout(own: number | undefined, deadline: number): number {
  const left = Math.max(1, deadline - Date.now());
  return own === undefined || own <= 0 || own > left ? left : own;
}

/**
 * The headers of an error the gateway answers itself (every attempt failed, nothing could be tried): `retry-after`
 * (seconds, at least 1) and `retry-after-ms` when the wait is known — always on a 429 (1 s when unknown) — and
 * `x-lb-attempts` after attempts. Both surfaces answer with these, so a client reads the same from either.
 */
export function errorHeaders(
  err: { readonly status: number; readonly retryAfterMs?: number | undefined },
  attempts: number,
  into: Record<string, string | number> = {},
): Record<string, string | number> {
  let ms = err.retryAfterMs;
  if (ms === undefined && err.status === 429) ms = 1000;
  if (ms !== undefined) {
    into['retry-after'] = String(Math.max(1, Math.ceil(ms / 1000)));
    into['retry-after-ms'] = String(Math.max(0, Math.round(ms)));
  }
  if (attempts > 0) into[ATTEMPTS_HEADER] = attempts;
  return into;
}

/** The response header naming the endpoint that answered (its id, never its key or URL). */
export const ENDPOINT_HEADER = 'x-lb-endpoint';
/** The response header counting the attempts a request took. */
export const ATTEMPTS_HEADER = 'x-lb-attempts';

/**
 * Sets the gateway's own response headers on `target` (a plain header object; `set` for a `Headers`): who answered,
 * after how many attempts. Both surfaces tag their answers here, so `x-lb-*` reads the same from either.
 */
export function tagResponse(
  target: { set(name: string, value: string): void } | Record<string, unknown>,
  ctx: Pick<AttemptContext, 'endpoint' | 'attempt'>,
): void {
  if (typeof (target as { set?: unknown }).set === 'function') {
    (target as Headers).set(ENDPOINT_HEADER, ctx.endpoint.id);
    (target as Headers).set(ATTEMPTS_HEADER, String(ctx.attempt));
  } else {
    (target as Record<string, unknown>)[ENDPOINT_HEADER] = ctx.endpoint.id;
    (target as Record<string, unknown>)[ATTEMPTS_HEADER] = ctx.attempt;
  }
}
