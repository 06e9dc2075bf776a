import {
  type AttemptContext,
  ConfigError,
  type Endpoint,
  estimateTokens,
  isLbError,
  isNoHealthyEndpointError,
  LbError,
  parseTags,
  type RouteRequest,
  type Router,
  type Usage,
} from '@lb/core';
import { STREAM_DEFAULTS } from '@lb/core/internal';
import {
  type AffinityStore,
  Attempt,
  type AttemptSettings,
  attemptTimeout,
  continuable,
  continuationBody,
  continuationRequest,
  createdIdIn,
  createsObject,
  defaultTimers,
  errorHeaders,
  FALLBACK_BODY_LIMIT,
  FALLBACK_HEADER,
  FALLBACKS_REQUEST_HEADER,
  type FallbackCause,
  type FallbackConfig,
  FallbackRun,
  fallbackCauseOf,
  fallbackCauseOfError,
  fallbackConfigFromEnv,
  fetchTransport,
  HEDGED_HEADER,
  type HedgeConfig,
  Hedger,
  HoldBudget,
  hasFallbacks,
  hedgeSafe,
  isObjectRoute,
  MemoryAffinityStore,
  objectIdsIn,
  PIN_HEADER,
  parseFallbackList,
  pinnedEndpoint,
  pinnedUnavailable,
  prefixCut,
  prepareUpstream,
  rememberObject,
  StreamOpenError,
  StreamTrail,
  tagResponse,
} from '@lb/exchange';
import {
  type DialectRequest,
  explainUnservable,
  getDialect,
  operationOf,
  providerGuard,
  requestFeatures,
} from '@lb/providers';
import { usageFromBytes } from '@lb/providers/internal';
import { continuing } from './internal/continue.js';
import { askUsage, COST_HEADER, costText } from './internal/cost.js';
import { bytesOption, envBool, msOption, readEnv } from './internal/env.js';
import { hedgeOf } from './internal/hedge.js';
import { readRequest } from './internal/request.js';
import { streamBody, withUsage } from './internal/stream.js';

/**
 * The base URL the SDK is given: every URL under it is routed. Any other absolute URL is routed too (its path,
 * less a leading `/v1`, is the OpenAI path), so SDKs that insist on their own base URL still work.
 */
export const PLACEHOLDER_BASE_URL = 'https://lb.invalid/v1';

/** A WHATWG fetch function. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** What {@link RouterFetchOptions.route} sees of a call, to add routing fields. */
export interface RouteInfo {
  method: string;
  /** OpenAI path after the base URL, query included. */
  path: string;
  operation: string;
  model: string | undefined;
  stream: boolean;
  /** Client headers (lower-case, credentials stripped). */
  headers: Readonly<Record<string, string>>;
}

/**
 * Options of {@link createRouterFetch}. Explicit options beat environment variables.
 */
export interface RouterFetchOptions {
  /**
   * Hedged requests: when a call safe to send twice has not answered within `afterMs` (or the route's observed
   * latency percentile `after: "p95"`), the same call goes to the next-best endpoint; the first answer wins, the
   * other is cancelled. `budget` caps the extra upstream requests (default 0.1: 10 % over a sliding minute);
   * `models` sets it per model or group. Default: off. Env: `LB_HEDGE_AFTER_MS`, `LB_HEDGE_BUDGET`.
   */
  hedge?: HedgeConfig;
  /**
   * Stream continuation: a chat stream that breaks after content is continued on another endpoint (the conversation
   * replayed with the partial answer as an assistant prefix) in the same stream; the first continued chunk carries
   * `x_lb: { continued_from: "<endpoint>" }`. Not for tool-call streams or `n` > 1. Default false. Env
   * `LB_STREAM_CONTINUE=true`.
   */
  streamContinue?: boolean;
  /** The transport each attempt uses. Default `globalThis.fetch`. */
  fetch?: FetchLike;
  /** Prefix stripped from incoming URLs to get the OpenAI path. Default {@link PLACEHOLDER_BASE_URL}. */
  baseURL?: string;
  /**
   * Streams: longest wait for the first byte after the response headers, ms; 0 = none. Until it comes the router
   * may still fail over, so a stream that never starts moves to the next endpoint. Default 30000.
   * Env: `STREAM_FIRST_BYTE_TIMEOUT`.
   */
  streamFirstByteTimeoutMs?: number;
  /**
   * Streams: longest silence between two chunks, ms; 0 = none. When it passes the caller's iteration rejects with
   * a `StreamTimeoutError` and the upstream request is cancelled. Default 60000. Env: `STREAM_IDLE_TIMEOUT`.
   */
  streamIdleTimeoutMs?: number;
  /**
   * Streams from an endpoint on stream probation (its last stream broke after the first byte: `AttemptContext`'s
   * `streamProbation`) are read whole before the caller gets a byte, for up to this many ms (or 512 KiB; then the
   * stream goes live), so that a repeat break or an error event fails over instead of reaching the caller. 0 = off.
   * Default 10000. Env: `STREAM_PROBATION_HOLD`.
   */
  streamProbationHoldMs?: number;
  /**
   * What all of this client's streams held for probation keep in memory together, bytes: a stream that would take
   * them past it goes live instead. Default 67108864 (64 MiB). Env: `STREAM_PROBATION_MAX_BYTES`.
   */
  streamProbationMaxBytes?: number;
  /**
   * Streams: the largest server-sent event an upstream may send, bytes; one that grows past it without its end (an
   * endless line) errors the stream and aborts the upstream. Default 8388608 (8 MiB). Env `LB_MAX_SSE_EVENT_BYTES`.
   */
  maxEventBytes?: number;
  /**
   * Streams: the longest one stream may run, ms, from its response head; past it the upstream is aborted and the
   * stream errors. 0: no bound. Default 1800000 (30 min). Env `LB_MAX_STREAM_DURATION`.
   */
  maxStreamDurationMs?: number;
  /**
   * Attach `@lb/providers`' `providerGuard()` to the router (once), so that an operation never reaches an endpoint
   * whose provider cannot serve it (embeddings never go to Anthropic). Default true.
   */
  providerGuard?: boolean;
  /**
   * Adds routing fields to a call (`tags`, `client`, `deadlineMs`, `maxRetries`, `requestId`). Called once per
   * call. Default: none. The header `x-lb-tags: a,b` (per-call `headers` option of the SDK) sets `tags` too.
   */
  route?: (info: RouteInfo) => Partial<RouteRequest> | undefined;
  /**
   * Adds `x-lb-endpoint` (the id of the endpoint that answered, never its key or URL) and `x-lb-attempts` to every
   * response, and `x-lb-attempts` to an error after attempts, as lb-server does. Read them with the SDK's
   * `.withResponse()`. Default true.
   */
  responseHeaders?: boolean;
  /**
   * Carries each attempt's trace context into its upstream request (`traceparent`): `createTracing(router)` from
   * `@lb/otel`, which is undefined when `@opentelemetry/api` is not installed. Default: none.
   */
  tracing?: { inject(requestId: string, headers: Record<string, string>, operation?: string): void };
  /**
   * Model fallback chains: `{ default, contextWindow, contentPolicy }`, each model → the models to try next (as
   * `[fallbacks]` in a config-env file). Default: env `LB_FALLBACKS`, `LB_CONTEXT_WINDOW_FALLBACKS`,
   * `LB_CONTENT_POLICY_FALLBACKS` (JSON), else none. A call may bring its own chain: body `models: [...]` or header
   * `x-lb-fallbacks: a,b`.
   */
  fallbacks?: FallbackConfig;
  /**
   * Where objects' endpoints are remembered (files, batches, stored Responses…: every later call naming one goes to
   * the endpoint that created it). Default: in memory (`MemoryAffinityStore`); `false`: off.
   */
  affinity?: AffinityStore | false;
  /**
   * Prices each call from the usage the provider returned: USD, or undefined when the model has no price (unknown,
   * never 0). With it, JSON answers carry `x-lb-cost: 0.000123` (read with `.withResponse()`), every
   * `attempt:usage` event carries `costUsd`, and streams ask the upstream for their usage
   * (`stream_options.include_usage`) when the caller did not, then take that extra usage chunk back out of the
   * caller's stream. Use `@lb/spend`'s price table: `cost: (usage, model, endpoint) => prices.costOf(usage, model,
   * endpoint)`. Default: none (no pricing, nothing changes).
   */
  cost?: (usage: Usage, model: string | undefined, endpoint: Endpoint) => number | undefined;
}

const encoder = new TextEncoder();
const ERROR_HEADERS = { 'content-type': 'application/json' };

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
  if (!router || typeof (router as Partial<Router>).execute !== 'function') {
    throw new ConfigError(`createRouterFetch: expected an @lb/core Router, received ${describe(router)}`);
  }
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new ConfigError(
      `createRouterFetch: options.fetch must be a function, received ${describe(options.fetch)}`,
    );
  }
  if (options.route !== undefined && typeof options.route !== 'function') {
    throw new ConfigError(
      `createRouterFetch: options.route must be a function, received ${describe(options.route)}`,
    );
  }
  if (options.responseHeaders !== undefined && typeof options.responseHeaders !== 'boolean') {
    throw new ConfigError(
      `createRouterFetch: options.responseHeaders must be a boolean, received ${describe(options.responseHeaders)}`,
    );
  }
  const tagged = options.responseHeaders ?? true;
  const tracing = options.tracing;
  const base = (options.baseURL ?? PLACEHOLDER_BASE_URL).replace(/\/+$/, '');
  const firstByteMs = msOption(
    options.streamFirstByteTimeoutMs,
    'streamFirstByteTimeoutMs',
    'STREAM_FIRST_BYTE_TIMEOUT',
    STREAM_DEFAULTS.streamFirstByteTimeoutMs,
  );
  const idleMs = msOption(
    options.streamIdleTimeoutMs,
    'streamIdleTimeoutMs',
    'STREAM_IDLE_TIMEOUT',
    STREAM_DEFAULTS.streamIdleTimeoutMs,
  );
  const holdMs = msOption(
    options.streamProbationHoldMs,
    'streamProbationHoldMs',
    'STREAM_PROBATION_HOLD',
    STREAM_DEFAULTS.streamProbationHoldMs,
  );
  // While a stream is held, the end of its endpoint's probation lets it go live (after the listener's caller is
  // done); nothing listens while nothing is held.
  const budget = new HoldBudget(
    bytesOption(
      options.streamProbationMaxBytes,
      'streamProbationMaxBytes',
      'STREAM_PROBATION_MAX_BYTES',
      STREAM_DEFAULTS.streamProbationMaxBytes,
    ),
    (release) =>
      router.on('endpoint:probation', (e) => {
        if (!e.on) queueMicrotask(() => release(e.endpointId));
      }),
  );
  const maxEventBytes = bytesOption(
    options.maxEventBytes,
    'maxEventBytes',
    'LB_MAX_SSE_EVENT_BYTES',
    STREAM_DEFAULTS.maxEventBytes,
  );
  // The engine's settings for every call of this client: the same lifecycle lb-server runs.
  const settings: AttemptSettings = {
    idleTimeoutMs: idleMs,
    holdMs,
    budget,
    maxEventBytes,
    maxStreamDurationMs: msOption(
      options.maxStreamDurationMs,
      'maxStreamDurationMs',
      'LB_MAX_STREAM_DURATION',
      STREAM_DEFAULTS.maxStreamDurationMs,
    ),
    timers: defaultTimers,
    passBody: true,
  };
  const route = options.route;
  let chains: FallbackConfig | undefined;
  try {
    chains = options.fallbacks ?? fallbackConfigFromEnv(readEnv);
  } catch (e) {
    throw new ConfigError(`createRouterFetch: ${(e as Error).message}`);
  }
  if (!hasFallbacks(chains)) chains = undefined;
  const affinity = options.affinity === false ? undefined : (options.affinity ?? new MemoryAffinityStore());
  if (options.providerGuard !== false && !router.guards.some((g) => g.name === 'provider')) {
    router.addGuard(providerGuard());
  }
  const transport = (): FetchLike => options.fetch ?? globalThis.fetch;
  const cost = options.cost;
  const upstream = fetchTransport(transport);
  const streamContinue = options.streamContinue ?? envBool('LB_STREAM_CONTINUE') ?? false;
  const hedgeConfig = hedgeOf(options.hedge);
  const hedger = hedgeConfig === undefined ? undefined : new Hedger(router, hedgeConfig);

  const routerFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    // Not an API call (the SDK probes `fetch('data:,')`): straight to the transport.
    const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (href.startsWith('data:') || href.startsWith('blob:')) return transport()(input, init);
    const req = await readRequest(input, init);
    const path = pathOf(req.url, base);
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
    if (cost !== undefined && stream) {
      const asked = askUsage(req, operation);
      if (asked) {
        askedUsage = true;
        json = req.json;
      }
    }
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
    if (route) {
      const extra = route({ method: req.method, path, operation, model, stream, headers: req.headers });
      if (extra) Object.assign(routeReq, extra, { signal: extra.signal ?? req.signal });
    }
    // Objects live where they were created: only object routes (and `x-lb-endpoint`) pay for the look-up.
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
    // Only a call creating or deleting an object looks at its answer.
    const afterwards = creates || (req.method === 'DELETE' && pin !== undefined) ? affinity : undefined;
    let answeredBy: string | undefined;

    // Stream continuation: the body of a continuation attempt, by the endpoint's provider; the endpoint streaming now.
    let bodyFor: ((provider: string | undefined) => Record<string, unknown>) | undefined;
    let streaming = '';
    const attempt = async (ctx: AttemptContext): Promise<Response> => {
      const ep = ctx.endpoint;
      answeredBy = ep.id;
      const cj = bodyFor?.(ep.provider);
      const tag = tagged ? ctx : undefined;
      const dialect = getDialect(ep.provider);
      const dreq: DialectRequest = {
        endpoint: ep,
        operation,
        method: req.method,
        path,
        headers: req.headers,
        body: cj === undefined ? req.body : encoder.encode(JSON.stringify(cj)),
        json: cj ?? json,
        upstreamModel: ctx.upstreamModel,
        stream,
        model,
      };
      const up = prepareUpstream(dialect, dreq);
      tracing?.inject(ctx.requestId, up.headers, operation);
      const translator = stream ? dialect.createStreamTranslator?.(dreq) : undefined;
      // The deadline bounds every wait: an attempt's timeout is the smaller of its own and what is left of it.
      const call = new Attempt(
        settings,
        stream,
        attemptTimeout(stream ? firstByteMs : undefined, ctx.deadline),
        stream ? ctx : undefined,
        ctx.streamProbation,
        translator,
      );
      call.follow(ctx.signal);
      upstream.send({ ...up, timeoutMs: 0 }, call);
      try {
        await call.promise;
      } catch (e) {
        // An error event before the first content (or while held on probation): the answer it stands for.
        if (e instanceof StreamOpenError) return failureResponse(e);
        throw e;
      }
      const res = call.response;
      if (res === undefined) {
        // An event stream, through the engine: whole events, the idle timeout, usage and the router's hold.
        const headers = new Headers();
        for (const k in call.headers) {
          const v = call.headers[k];
          if (v !== undefined && k !== 'content-length' && k !== 'content-encoding')
            headers.set(k, Array.isArray(v) ? v.join(', ') : v);
        }
        if (tag) tagResponse(headers, tag);
        if (translator) headers.set('content-type', 'text/event-stream');
        streaming = ep.id;
        const body = streamBody(call, {
          endpointId: ep.id,
          idleTimeoutMs: idleMs,
          signal: req.signal,
          reportUsage:
            cost === undefined
              ? ctx.reportUsage
              : (u) => ctx.reportUsage(u, cost(u, ctx.upstreamModel ?? model, ep)),
          secrets: [ep.apiKey],
          dropAskedUsage: askedUsage,
        });
        return new Response(body, { status: call.status, headers });
      }
      if (dialect.translateResponse) {
        const raw = new Uint8Array(await res.arrayBuffer());
        const h: Record<string, string> = {};
        res.headers.forEach((v, k) => {
          h[k] = v;
        });
        const t = dialect.translateResponse(res.status, h, raw, dreq);
        if (tag) tagResponse(t.headers, tag);
        if (cost !== undefined && t.status < 300) {
          const usage = usageFromBytes(
            typeof t.body === 'string' ? encoder.encode(t.body) : (t.body as Uint8Array),
          );
          if (usage) {
            const usd = cost(usage, ctx.upstreamModel ?? model, ep);
            if (usd !== undefined) t.headers[COST_HEADER] = costText(usd);
            ctx.reportUsage(usage, usd);
          }
        }
        return new Response(t.body as BodyInit, { status: t.status, headers: t.headers });
      }
      if (
        cost !== undefined &&
        res.ok &&
        res.body &&
        (res.headers.get('content-type') ?? '').includes('json')
      ) {
        // `x-lb-cost` goes in the headers: the body (usage at its end) is read whole first.
        const raw = new Uint8Array(await res.arrayBuffer());
        const headers = ownHeaders(res, tag);
        const usage = usageFromBytes(raw);
        if (usage) {
          const usd = cost(usage, ctx.upstreamModel ?? model, ep);
          if (usd !== undefined) headers.set(COST_HEADER, costText(usd));
          ctx.reportUsage(usage, usd);
        }
        return new Response(raw, { status: res.status, statusText: res.statusText, headers });
      }
      // Token usage for whoever listens (TPM budgets, metrics), read from the body as the caller reads it.
      if (
        res.ok &&
        res.body &&
        (res.headers.get('content-type') ?? '').includes('json') &&
        router.listenerCount('attempt:usage') > 0
      )
        return withUsage(res, ctx.reportUsage, ownHeaders(res, tag));
      return tag ? tagInPlace(res, tag) : res;
    };

    // One execution of the call on the current model: hedged when the route hedges and the call is safe to send twice
    // (`hedge.ts`), continued on another endpoint when a chat stream breaks after content, else the router's.
    const once = async (): Promise<Response> => {
      const hedging =
        hedger === undefined
          ? undefined
          : hedger.routeOf(routeReq.model, hedgeSafe(operation, req.method, path, json));
      if (hedging !== undefined) {
        const r = await hedger!.run(hedging, routeReq, attempt, { discard });
        return r.hedged ? markHedged(r.value) : r.value;
      }
      if (streamContinue && stream && continuable(operation, json)) {
        const trail = new StreamTrail();
        const first = await router.execute(routeReq, attempt, { discard });
        if (!first.ok || first.body === null) return first;
        return continuing(
          first,
          trail,
          () => streaming,
          async (from) => {
            const prefix = trail.text;
            bodyFor = (provider) => {
              trail.skip = prefixCut(prefix, provider);
              return continuationBody(json!, prefix, provider);
            };
            const res = await router.execute(continuationRequest(router, routeReq, from), attempt, {
              discard,
            });
            if (res.ok)
              router.publishContinue({
                requestId: routeReq.requestId ?? '',
                model: routeReq.model,
                fromEndpointId: from,
                endpointId: streaming,
                prefixChars: prefix.length,
              });
            return res;
          },
        );
      }
      return router.execute(routeReq, attempt, { discard });
    };

    if (model === undefined || (chains === undefined && requested === undefined) || pin !== undefined) {
      let res: Response;
      try {
        res = await once();
      } catch (error) {
        if (!isLbError(error)) throw error;
        if (pin !== undefined && isNoHealthyEndpointError(error)) {
          if (error.lastValue instanceof Response) discard(error.lastValue);
          return synthetic(pinnedUnavailable(router, pin.endpointId, pin.objectId, error), 0);
        }
        return errorResponse(router, error, operation, model, routeReq.features, tagged);
      }
      return afterwards === undefined
        ? res
        : remember(afterwards, res, creates, req.method, path, answeredBy);
    }
    // With a chain: the same, model after model (never one twice), all within the request's deadline.
    let run: FallbackRun | undefined;
    const startedAt = Date.now();
    const newRun = () =>
      new FallbackRun(
        model,
        chains,
        requested,
        (routeReq.deadlineMs ?? router.config.deadlineMs ?? 120_000) - (Date.now() - startedAt),
      );
    const requestId = (routeReq.requestId ??= `req_f${(++fallbackSeq).toString(36)}`);
    const fallBack = (cause: FallbackCause | undefined): boolean => {
      if (cause === undefined || req.signal?.aborted) return false;
      run ??= newRun();
      const to = run.next(cause, router, requestId);
      if (to === undefined) return false;
      routeReq.model = to;
      routeReq.deadlineMs = run.deadlineMs();
      return true;
    };
    for (;;) {
      let res: Response;
      try {
        res = await once();
      } catch (error) {
        if (!isLbError(error)) throw error;
        if (fallBack(fallbackCauseOfError(error))) {
          if (isNoHealthyEndpointError(error) && error.lastValue instanceof Response)
            discard(error.lastValue);
          continue;
        }
        return errorResponse(router, error, operation, routeReq.model, routeReq.features, tagged);
      }
      const st = res.status;
      if (st >= 400 && st < 500 && (run ??= newRun()).wantsBody(st)) {
        const len = Number(res.headers.get('content-length') ?? 0);
        if (len <= FALLBACK_BODY_LIMIT) {
          const text = await res.text();
          if (fallBack(fallbackCauseOf(st, text))) continue;
          res = new Response(text, { status: st, statusText: res.statusText, headers: res.headers });
        }
      }
      if (run?.taken) {
        const headers = new Headers(res.headers);
        headers.set(FALLBACK_HEADER, run.model);
        try {
          Object.defineProperty(res, 'headers', { value: headers, configurable: true });
        } catch {
          res = new Response(res.body, { status: res.status, statusText: res.statusText, headers });
        }
      }
      return afterwards === undefined
        ? res
        : remember(afterwards, res, creates, req.method, path, answeredBy);
    }
  };
  // The openai SDK reads `fetch.Response` to check FormData support instead of probing the network.
  return Object.assign(routerFetch, { Response: globalThis.Response });
}

let fallbackSeq = 0;

/**
 * After a 2xx on an object route: remembers the endpoint of the object the answer created (its id read from a
 * clone's first bytes), or forgets the one a DELETE removed.
 */
async function remember(
  store: AffinityStore,
  res: Response,
  creates: boolean,
  method: string,
  path: string,
  endpointId: string | undefined,
): Promise<Response> {
  if (!res.ok || endpointId === undefined) return res;
  if (creates && res.body !== null) {
    const found = createdIdOf(res.clone()).then((id) =>
      id === undefined ? undefined : rememberObject(store, id, endpointId),
    );
    // A JSON answer is small and whole: remembered before the caller has it. A stream (a Responses stream with
    // `store`) carries the id in its first event: read from the clone alongside, never holding the caller's stream.
    if ((res.headers.get('content-type') ?? '').includes('event-stream')) found.catch(() => {});
    else await found;
  } else if (method === 'DELETE' && isObjectRoute(path)) {
    const id = objectIdsIn(path, undefined).at(-1);
    if (id !== undefined && path.split('?')[0].endsWith(id)) await store.delete(id);
  }
  return res;
}

/** The created object's id from the first 8 KiB of a (cloned) answer; the clone is cancelled after. */
async function createdIdOf(res: Response): Promise<string | undefined> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  try {
    while (text.length < 8192) {
      const r = await reader.read();
      if (r.done) break;
      text += dec.decode(r.value, { stream: true });
      const id = createdIdIn(text);
      if (id !== undefined) return id;
    }
    return createdIdIn(text);
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** Sets `x-lb-hedged: 1` on an answer a hedge won (a new `Response` when its headers are immutable). */
function markHedged(res: Response): Response {
  try {
    res.headers.set(HEDGED_HEADER, '1');
    return res;
  } catch {
    const headers = new Headers(res.headers);
    headers.set(HEDGED_HEADER, '1');
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  }
}

function hasTpm(e: Endpoint): boolean {
  return e.limits.tpm !== undefined;
}

function discard(res: Response): void {
  res.body?.cancel().catch(() => {});
}

/** The OpenAI path of a URL: after the base, or the pathname less a leading `/v1`, query included. */
function pathOf(url: string, base: string): string {
  if (url.startsWith(base)) {
    const rest = url.slice(base.length);
    if (rest === '' || rest[0] === '/' || rest[0] === '?') return rest[0] === '/' ? rest : `/${rest}`;
  }
  const u = new URL(url);
  const p = u.pathname.startsWith('/v1/') || u.pathname === '/v1' ? u.pathname.slice(3) || '/' : u.pathname;
  return p + u.search;
}

/** Turns a router failure into the response an OpenAI server would have sent. */
async function errorResponse(
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

/**
 * The upstream response's headers for a new response around its body, which fetch has already decoded (so no
 * length or encoding of the upstream's), tagged with {@link lbHeaders} when `tag` is given.
 */
function ownHeaders(res: Response, tag: AttemptContext | undefined): Headers {
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  if (tag) tagResponse(headers, tag);
  return headers;
}

/** The answer an error event before the first content stands for, as an OpenAI error response. */
function failureResponse(e: StreamOpenError): Response {
  return new Response(
    JSON.stringify({ error: { message: e.message, type: e.type, code: null, param: null } }),
    { status: e.status, headers: { 'content-type': 'application/json' } },
  );
}

/**
 * The response as it came, its `headers` a tagged copy. A fetch response's own headers are immutable, and a new
 * `Response` around its body cost ~40 µs per call (the body is then read through a JS stream reader instead of
 * fetch's own path), so the copy is set on this response. A response that refuses it gets the new `Response`.
 */
function tagInPlace(res: Response, tag: AttemptContext): Response {
  const headers = new Headers(res.headers);
  tagResponse(headers, tag);
  try {
    Object.defineProperty(res, 'headers', { value: headers, configurable: true });
    return res;
  } catch {
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  }
}

function synthetic(error: LbError, attempts: number): Response {
  // Retry-After and x-lb-attempts as lb-server sends them (`@lb/exchange`'s `errorHeaders`).
  const headers = errorHeaders(error, attempts, { ...ERROR_HEADERS, 'x-lb-error': error.code });
  for (const k in headers) headers[k] = String(headers[k]);
  return new Response(JSON.stringify(error.toOpenAIError()), {
    status: error.status,
    headers: headers as Record<string, string>,
  });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object')
    return `an object (${
      Object.keys(v as object)
        .slice(0, 5)
        .join(', ') || 'empty'
    })`;
  return `${typeof v} ${JSON.stringify(v)}`;
}
