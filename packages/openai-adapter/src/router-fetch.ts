// The router fetch: a WHATWG `fetch` whose every call goes through an `@lb/core` router. This file is its entry —
// the options and what a client builds from them are in `fetch-options.ts`, reading a call in `call.ts`, its
// routing (fallbacks, pins, hedging, continuation) in `routing.ts`, one attempt in `attempt.ts`, the responses and
// errors lb makes itself in `responses.ts`.
import type { Router } from '@lb/core';
import { readCall } from './call.js';
import { type FetchLike, fetchClient, type RouterFetchOptions } from './fetch-options.js';
import { routeCall } from './routing.js';

export type { FetchLike, RouteInfo, RouterFetchOptions } from './fetch-options.js';
export { PLACEHOLDER_BASE_URL } from './fetch-options.js';

/**
 * A WHATWG `fetch` that sends every call through the router: it picks an endpoint, rewrites the base URL, auth and
 * model for it through the endpoint's provider dialect (`@lb/providers`), and fails over per the router's
 * classification. The request body is read once and replayed on every attempt (JSON, multipart and binary alike).
 *
 * Streams fail over until their first byte reaches the caller; a break after that rejects the caller's stream
 * promptly (`StreamInterruptedError`), never hangs. Aborting the caller's signal cancels the upstream request.
 * When every attempt fails the caller gets the last upstream error response (keys redacted), or a synthetic
 * OpenAI-style error response (`503`/`429` with `retry-after`, `502`, `504`, `404` for an unknown model), so SDKs
 * raise their usual typed errors.
 *
 * Hand it to any SDK that accepts a custom fetch, with {@link PLACEHOLDER_BASE_URL} as the base URL.
 *
 * @example
 * import { createOpenAI as createAISDK } from '@ai-sdk/openai';
 * const fetch = createRouterFetch(router);
 * const provider = createAISDK({ baseURL: PLACEHOLDER_BASE_URL, apiKey: 'lb-managed', fetch });
 *
 * @example
 * const res = await createRouterFetch(router)(`${PLACEHOLDER_BASE_URL}/embeddings`, {
 *   method: 'POST', headers: { 'content-type': 'application/json' },
 *   body: JSON.stringify({ model: 'text-embedding-3-small', input: 'hi' }),
 * });
 */
export function createRouterFetch(router: Router, options: RouterFetchOptions = {}): FetchLike {
  const c = fetchClient(router, options);
  const routerFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    // Not an API call (the SDK probes `fetch('data:,')`): straight to the transport.
    const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (href.startsWith('data:') || href.startsWith('blob:')) return c.transport()(input, init);
    const call = await readCall(c, input, init);
    return call instanceof Response ? call : routeCall(c, call);
  };
  // The openai SDK reads `fetch.Response` to check FormData support instead of probing the network.
  return Object.assign(routerFetch, { Response: globalThis.Response });
}
