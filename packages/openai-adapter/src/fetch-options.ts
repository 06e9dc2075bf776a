// The options of a router fetch and what one client builds from them once: validated options, the engine's
// settings, the transport, fallback chains, the affinity store, hedging. Every call of the client reads this
// `FetchClient`; nothing here runs per call.
import { ConfigError, type Endpoint, type RouteRequest, type Router, type Usage } from '@lb/core';
import { STREAM_DEFAULTS } from '@lb/core/internal';
import {
  type AffinityStore,
  type AttemptSettings,
  defaultTimers,
  type FallbackConfig,
  fallbackConfigFromEnv,
  fetchTransport,
  type HedgeConfig,
  Hedger,
  HoldBudget,
  hasFallbacks,
  MemoryAffinityStore,
  type Transport,
} from '@lb/exchange';
import { providerGuard } from '@lb/providers';
import { dispatchTransport } from './internal/dispatch.js';
import { bytesOption, envBool, msOption, readEnv } from './internal/env.js';
import { hedgeOf } from './internal/hedge.js';

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
  /**
   * The fetch each attempt sends through. Default: none — attempts go through undici's global dispatcher (what Node's
   * `fetch` uses, and what `setGlobalDispatcher` sets: a proxy agent applies), about a third of the CPU of a `fetch`
   * call; while `globalThis.fetch` is swapped for another function, through that function instead.
   */
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

/** What one router fetch built from its options: read by every call, never changed by one. */
export interface FetchClient {
  readonly router: Router;
  /** `x-lb-*` response headers on (`responseHeaders`). */
  readonly tagged: boolean;
  readonly tracing: RouterFetchOptions['tracing'];
  /** The base URL stripped from incoming URLs, no trailing slash. */
  readonly base: string;
  readonly firstByteMs: number;
  readonly idleMs: number;
  /** The engine's settings for every call of this client: the same lifecycle lb-server runs. */
  readonly settings: AttemptSettings;
  readonly route: RouterFetchOptions['route'];
  /** Fallback chains, undefined when there are none. */
  readonly chains: FallbackConfig | undefined;
  /** Where objects' endpoints are remembered; undefined: affinity off. */
  readonly affinity: AffinityStore | undefined;
  /** The fetch function of the moment (read per call, so a swapped `globalThis.fetch` is seen). */
  readonly transport: () => FetchLike;
  readonly upstream: Transport;
  readonly cost: RouterFetchOptions['cost'];
  readonly streamContinue: boolean;
  readonly hedger: Hedger | undefined;
}

/** Validates `options` and builds the client's settings (throws `ConfigError` on bad options). */
export function fetchClient(router: Router, options: RouterFetchOptions): FetchClient {
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
  const hedgeConfig = hedgeOf(options.hedge);
  return {
    router,
    tagged,
    tracing,
    base,
    firstByteMs,
    idleMs,
    settings,
    route,
    chains,
    affinity,
    transport,
    upstream: options.fetch !== undefined ? fetchTransport(transport) : defaultTransport(transport),
    cost: options.cost,
    streamContinue: options.streamContinue ?? envBool('LB_STREAM_CONTINUE') ?? false,
    hedger: hedgeConfig === undefined ? undefined : new Hedger(router, hedgeConfig),
  };
}

/** `globalThis.fetch` as this module found it: while it is still that one, calls skip fetch for the dispatcher. */
const nativeFetch = globalThis.fetch;

/**
 * Without `options.fetch`: undici's global dispatcher (`internal/dispatch.ts`), unless `globalThis.fetch` was swapped
 * since (a test's or an instrumentation's fetch then sees every call, as before).
 */
function defaultTransport(transport: () => FetchLike): Transport {
  const viaFetch = fetchTransport(transport);
  return {
    send(req, handler) {
      (globalThis.fetch === nativeFetch ? dispatchTransport : viaFetch).send(req, handler);
    },
  };
}

/** What a value is, for an error message (never its content beyond a few keys). */
export function describe(v: unknown): string {
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
