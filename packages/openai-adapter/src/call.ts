// Request reading: what one call of the router fetch is, read once from the caller's `fetch` arguments — its
// OpenAI path and operation, the JSON body (its own fallback list `models` stripped, usage asked for when a stream
// is priced), the model, the route request the router sees (features, token estimate, `x-lb-tags`, the `route`
// hook) and the endpoint an object or `x-lb-endpoint` pins it to.
import { type Endpoint, estimateTokens, isLbError, LbError, parseTags, type RouteRequest } from '@lb/core';
import {
  type AffinityStore,
  createsObject,
  FALLBACKS_REQUEST_HEADER,
  isObjectRoute,
  PIN_HEADER,
  parseFallbackList,
  pinnedEndpoint,
} from '@lb/exchange';
import { operationOf, requestFeatures } from '@lb/providers';
import type { FetchClient } from './fetch-options.js';
import { askUsage } from './internal/cost.js';
import { type ReadRequest, readRequest } from './internal/request.js';
import { synthetic } from './responses.js';

const encoder = new TextEncoder();

/** One call, as read: what every attempt of it and its routing read (and the few things they note on it). */
export interface Call {
  readonly req: ReadRequest;
  /** OpenAI path after the base URL, query included. */
  readonly path: string;
  readonly operation: string;
  /** The JSON body as sent upstream (`models` stripped, `stream_options` added when usage was asked). */
  readonly json: Record<string, any> | undefined;
  readonly model: string | undefined;
  readonly stream: boolean;
  /** lb asked the upstream for a stream's usage the caller did not: taken back out of the caller's stream. */
  readonly askedUsage: boolean;
  /** The call's own fallback models (body `models: [...]` less the primary, then `x-lb-fallbacks`). */
  readonly requested: string[] | undefined;
  readonly routeReq: RouteRequest;
  /** The endpoint an object (or `x-lb-endpoint`) pins the call to. */
  readonly pin: { endpointId: string; objectId?: string } | undefined;
  /** The call creates an object whose endpoint is to be remembered. */
  readonly creates: boolean;
  /** Only a call creating or deleting an object looks at its answer: the store it then updates. */
  readonly afterwards: AffinityStore | undefined;
  /** The endpoint of the latest attempt. */
  answeredBy: string | undefined;
  /** Stream continuation: the body of a continuation attempt, by the endpoint's provider. */
  bodyFor: ((provider: string | undefined) => Record<string, unknown>) | undefined;
  /** Stream continuation: the endpoint streaming now. */
  streaming: string;
}

/** Reads one call; a `Response` when the call is refused before any routing (a bad `models`, an unknown pin). */
export async function readCall(
  c: FetchClient,
  input: string | URL | Request,
  init: RequestInit | undefined,
): Promise<Call | Response> {
  const req = await readRequest(input, init);
  const path = pathOf(req.url, c.base);
  const operation = operationOf(req.method, path);
  let json = req.json;
  // The call's own fallback chain: body `models: [...]` (the first is the primary; stripped) and `x-lb-fallbacks`.
  let requested: string[] | undefined;
  if (json !== undefined && json.models !== undefined) {
    const list = Array.isArray(json.models) ? parseFallbackList(json.models) : undefined;
    if (list === undefined)
      return synthetic(
        new LbError('"models" must be a non-empty list of model names', {
          status: 400,
          type: 'invalid_request_error',
          code: 'invalid_models',
        }),
        0,
      );
    const { models: _, ...rest } = json;
    if (typeof rest.model !== 'string') rest.model = list[0];
    json = rest;
    req.json = rest;
    requested = list.filter((m) => m !== rest.model);
    req.body = encoder.encode(JSON.stringify(rest));
  }
  const fbHeader = req.headers[FALLBACKS_REQUEST_HEADER];
  if (fbHeader !== undefined) {
    delete req.headers[FALLBACKS_REQUEST_HEADER];
    const list = parseFallbackList(fbHeader);
    if (list !== undefined) requested = [...(requested ?? []), ...list];
  }
  const model = typeof json?.model === 'string' ? (json.model as string) : req.formModel;
  const stream = json?.stream === true;
  // Pricing a stream needs its usage: asked for when the caller did not, and taken back out of its stream.
  let askedUsage = false;
  if (c.cost !== undefined && stream) {
    const asked = askUsage(req, operation);
    if (asked) {
      askedUsage = true;
      json = req.json;
    }
  }
  const router = c.router;
  const routeReq: RouteRequest = {
    model,
    operation,
    signal: req.signal,
    features: requestFeatures(operation, json),
  };
  // Token estimates (for tokens-per-minute budgets) as lb-server makes them: `@lb/core`'s one estimator, and only
  // while some endpoint has such a budget.
  if (json !== undefined && router.endpoints.some(hasTpm)) routeReq.estimatedTokens = estimateTokens(json);
  const tagHeader = req.headers['x-lb-tags'];
  if (tagHeader !== undefined) {
    delete req.headers['x-lb-tags'];
    routeReq.tags = parseTags(tagHeader);
  }
  if (c.route) {
    const extra = c.route({ method: req.method, path, operation, model, stream, headers: req.headers });
    if (extra) Object.assign(routeReq, extra, { signal: extra.signal ?? req.signal });
  }
  // Objects live where they were created: only object routes (and `x-lb-endpoint`) pay for the look-up.
  const affinity = c.affinity;
  const pinHeader = req.headers[PIN_HEADER];
  let pin: { endpointId: string; objectId?: string } | undefined;
  if (pinHeader !== undefined || (affinity !== undefined && isObjectRoute(path))) {
    delete req.headers[PIN_HEADER];
    try {
      pin = await pinnedEndpoint(router, affinity, pinHeader, path, () => json);
    } catch (e) {
      if (!isLbError(e)) throw e;
      return synthetic(e, 0);
    }
    if (pin !== undefined) routeReq.endpoint = pin.endpointId;
  }
  const creates = affinity !== undefined && createsObject(req.method, path, json);
  return {
    req,
    path,
    operation,
    json,
    model,
    stream,
    askedUsage,
    requested,
    routeReq,
    pin,
    creates,
    afterwards: creates || (req.method === 'DELETE' && pin !== undefined) ? affinity : undefined,
    answeredBy: undefined,
    bodyFor: undefined,
    streaming: '',
  };
}

function hasTpm(e: Endpoint): boolean {
  return e.limits.tpm !== undefined;
}

/** The OpenAI path of a URL: after the base, or the pathname less a leading `/v1`, query included. */
export function pathOf(url: string, base: string): string {
  if (url.startsWith(base)) {
    const rest = url.slice(base.length);
    if (rest === '' || rest[0] === '/' || rest[0] === '?') return rest[0] === '/' ? rest : `/${rest}`;
  }
  const u = new URL(url);
  const p = u.pathname.startsWith('/v1/') || u.pathname === '/v1' ? u.pathname.slice(3) || '/' : u.pathname;
  return p + u.search;
}
