/**
 * The one table that turns an error reported inside a stream (or an error body) into the HTTP status the same error
 * has as a response, so that a gateway classifies an error event as it would the response: a rate limit is a 429, an
 * overload a 529, a rejected key a 401. lb-server, `@lb/openai-adapter` and the Anthropic dialect all read it.
 */

/** Error type → status: Anthropic's documented types ("Errors"), which OpenAI-compatible servers share in part. */
export const STATUS_OF_ERROR_TYPE: Readonly<Record<string, number>> = Object.freeze({
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
});

/** What an error event or error body says of itself (OpenAI's `{ message, type, code }`, maybe a `status`). */
export interface ErrorFields {
  status?: unknown;
  type?: unknown;
  code?: unknown;
}

/**
 * The HTTP status an error event stands for: its own `status` (or a numeric `code`) when it is one of 400–599, else
 * 401 for a code naming the API key, else the type's in {@link STATUS_OF_ERROR_TYPE}, else read from its type and code (`rate_limit`, `quota` → 429,
 * `overload` → 529, `auth`, `api_key` → 401, `invalid_request`, `not_found`, `context_length` → 400), else
 * `fallback` (default 502: a bad gateway answer, which fails over).
 *
 * @example
 * errorEventStatus({ type: 'server_error', code: 'rate_limit_exceeded' }); // 429
 * errorEventStatus({ type: 'overloaded_error' });                           // 529
 */
export function errorEventStatus(e: ErrorFields | undefined, fallback = 502): number {
  if (e === undefined || e === null) return fallback;
  const n = typeof e.status === 'number' ? e.status : Number(e.code);
  if (Number.isInteger(n) && n >= 400 && n < 600) return n;
  const type = typeof e.type === 'string' ? e.type : '';
  const code = typeof e.code === 'string' ? e.code : '';
  // A rejected key is a 401 whatever type carries it (OpenAI: `invalid_request_error` / `invalid_api_key`).
  if (/api.?key/i.test(code)) return 401;
  const known = STATUS_OF_ERROR_TYPE[type];
  if (known !== undefined) return known;
  const tag = `${type} ${code}`;
  if (/rate.?limit|quota/i.test(tag)) return 429;
  if (/overload/i.test(tag)) return 529;
  if (/auth|api.?key/i.test(tag)) return 401;
  if (/invalid_request|not_found|context_length/i.test(tag)) return 400;
  return fallback;
}
