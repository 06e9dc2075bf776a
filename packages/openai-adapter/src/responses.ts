// Responses and errors: what the caller's SDK receives besides an upstream answer passed on — the `x-lb-*` tags
// set on an answer, the OpenAI-shaped error a router failure or an error event before the first content stands
// for (keys redacted, `retry-after` and `x-lb-attempts` as lb-server sends them), and dropping a body unread.
import { type AttemptContext, isNoHealthyEndpointError, type LbError, type Router } from '@lb/core';
import { errorHeaders, HEDGED_HEADER, type StreamOpenError, tagResponse } from '@lb/exchange';
import { explainUnservable } from '@lb/providers';

const ERROR_HEADERS = { 'content-type': 'application/json' };

/** Turns a router failure into the response an OpenAI server would have sent. */
export async function errorResponse(
  router: Router,
  error: LbError,
  operation: string,
  model: string | undefined,
  features: readonly string[] | undefined,
  tagged: boolean,
): Promise<Response> {
  let attempts = 0;
  if (isNoHealthyEndpointError(error)) {
    attempts = tagged ? error.attempts.length : 0;
    // The router's verdict over every attempt, as lb-server answers it (502/503/504/429 with its code), never the
    // last upstream body (which may quote a key).
    const last = error.lastValue;
    if (last instanceof Response) discard(last);
    if (error.attempts.length === 0) {
      // Nothing was tried: say so precisely when no endpoint could ever serve this route.
      const problem = explainUnservable(router, { operation, model, features });
      if (problem) return synthetic(problem, 0);
    }
  }
  return synthetic(error, attempts);
}

/** The OpenAI error response the gateway answers itself for `error`, after `attempts` attempts. */
export function synthetic(error: LbError, attempts: number): Response {
  // Retry-After and x-lb-attempts as lb-server sends them (`@lb/exchange`'s `errorHeaders`).
  const headers = errorHeaders(error, attempts, { ...ERROR_HEADERS, 'x-lb-error': error.code });
  for (const k in headers) headers[k] = String(headers[k]);
  return new Response(JSON.stringify(error.toOpenAIError()), {
    status: error.status,
    headers: headers as Record<string, string>,
  });
}

/** The answer an error event before the first content stands for, as an OpenAI error response. */
export function failureResponse(e: StreamOpenError): Response {
  return new Response(
    JSON.stringify({ error: { message: e.message, type: e.type, code: null, param: null } }),
    { status: e.status, headers: { 'content-type': 'application/json' } },
  );
}

/**
 * The upstream response's headers for a new response around its body, which fetch has already decoded (so no
 * length or encoding of the upstream's), tagged with the `x-lb-*` headers when `tag` is given.
 */
export function ownHeaders(res: Response, tag: AttemptContext | undefined): Headers {
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  if (tag) tagResponse(headers, tag);
  return headers;
}

/**
 * The response as it came, its `headers` a tagged copy. A fetch response's own headers are immutable, and a new
 * `Response` around its body cost ~40 µs per call (the body is then read through a JS stream reader instead of
 * fetch's own path), so the copy is set on this response. A response that refuses it gets the new `Response`.
 */
export function tagInPlace(res: Response, tag: AttemptContext): Response {
  const headers = new Headers(res.headers);
  tagResponse(headers, tag);
  return withHeaders(res, headers);
}

/** Sets `x-lb-hedged: 1` on an answer a hedge won (a new `Response` when its headers are immutable). */
export function markHedged(res: Response): Response {
  try {
    res.headers.set(HEDGED_HEADER, '1');
    return res;
  } catch {
    const headers = new Headers(res.headers);
    headers.set(HEDGED_HEADER, '1');
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  }
}

/** `res` with `headers` in place of its own: set on it, or a new `Response` around its body when it refuses. */
export function withHeaders(res: Response, headers: Headers): Response {
  try {
    Object.defineProperty(res, 'headers', { value: headers, configurable: true });
    return res;
  } catch {
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  }
}

/** Drops a response's body unread. */
export function discard(res: Response): void {
  res.body?.cancel().catch(() => {});
}
