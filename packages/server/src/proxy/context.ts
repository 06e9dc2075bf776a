// What every request through the proxy shares: the server's context, and the engine's settings and transport built
// once from it.
import type { IncomingHttpHeaders } from 'node:http';
import type { LbError, Router } from '@lb/core';
import type {
  AffinityStore,
  AttemptSettings,
  FallbackConfig,
  Hedger,
  HoldBudget,
  Transport,
} from '@lb/exchange';
import type { Dialect, DialectRequest } from '@lb/providers';
import type { Agent } from 'undici';
import type { ClientRequestRecord } from '../observability/index.js';
import type { ServerSettings } from '../options.js';
import type { Redactor } from '../redact.js';
import type { Wallet } from '../spend.js';
import { undiciTimers, undiciTransport } from '../upstream.js';
import type { Exchange } from './exchange.js';

/** A provider dialect and what it gets to build the upstream request (`@lb/providers`). */
export type DialectLike = Dialect;
export type DialectRequestLike = DialectRequest;

/** What one client request leaves for the request log and HTTP metrics. */
export type ExchangeRecord = ClientRequestRecord;

/** Everything the proxy needs, shared by all requests. */
export interface ProxyContext {
  router: Router;
  transport: Agent;
  settings: ServerSettings;
  /** What this server's streams held for probation keep together (`settings.streamProbationMaxBytes`). */
  probationBudget: HoldBudget;
  defaultModel: string | undefined;
  /** Where objects' endpoints are remembered (files, batches, stored responses…): memory, or Redis. */
  affinity?: AffinityStore;
  /** Model fallback chains (`[fallbacks]`, `LB_*FALLBACKS`); undefined when none are configured. */
  fallbacks?: FallbackConfig;
  /** Hedged requests (`@lb/exchange`'s `hedge.ts`), when the config turns them on anywhere. */
  hedger?: Hedger;
  /** Stream continuation (`stream_continue`, `LB_STREAM_CONTINUE`; `@lb/exchange`'s `continue.ts`). */
  streamContinue?: boolean;
  dialect(name: string): DialectLike | undefined;
  /** Why no endpoint could ever serve a request nothing was tried for (unsupported operation or parameter…). */
  explain?(
    operation: string,
    model: string | undefined,
    features: readonly string[] | undefined,
  ): LbError | undefined;
  /** Token estimate of a request body, for token-per-minute limits; set only while some endpoint has one. */
  estimate: ((json: Record<string, any>) => number) | undefined;
  /** What a JSON body asks of an endpoint's provider (`n` > 1…); set only while some endpoint's provider lacks one. */
  features: ((operation: string, json: Record<string, any>) => readonly string[] | undefined) | undefined;
  record(rec: ExchangeRecord): void;
  onError(err: unknown, requestId: string): void;
  /** Masks configured secrets in response headers and non-2xx bodies (`redact.ts`); swapped on reload. */
  redactor: Redactor;
  /** The streams being written to clients now: a shutdown that cannot wait for them ends each with an SSE error. */
  streams: Set<Exchange>;
  /** OpenTelemetry (`@lb/otel`), when `@opentelemetry/api` is installed: the client's trace context in, each attempt's out. */
  trace?: TraceHooks;
  /** Virtual keys, budgets and cost (`spend.ts`): admission before routing, cost and settlement after. */
  wallet?: Wallet;
  /** Streams ask the upstream for their usage when the client did not (false while an Azure endpoint is pooled). */
  askUsage?: boolean;
  /** Token estimate of a body for a key's budget admission (`@lb/ratelimit`'s `estimateTokens`). */
  estimateTokens?: (json: Record<string, any>) => number;
}

/** What the proxy calls to carry trace context: before routing, and on each attempt's upstream headers. */
export interface TraceHooks {
  continueFrom(requestId: string, headers: IncomingHttpHeaders, operation: string): void;
  inject(requestId: string, headers: Record<string, string>): void;
}

/** The engine's settings for this server's attempts: built once per settings object (a reload swaps it). */
const engineSettings = new WeakMap<ServerSettings, AttemptSettings>();
const transports = new WeakMap<Agent, Transport>();

export function attemptSettingsOf(px: ProxyContext): AttemptSettings {
  const s = px.settings;
  let a = engineSettings.get(s);
  if (a === undefined) {
    a = {
      idleTimeoutMs: s.streamIdleTimeoutMs,
      holdMs: s.streamProbationHoldMs,
      budget: px.probationBudget,
      maxEventBytes: s.maxEventBytes,
      maxStreamDurationMs: s.maxStreamDurationMs,
      timers: undiciTimers,
    };
    engineSettings.set(s, a);
  }
  return a;
}

export function transportOf(agent: Agent): Transport {
  let t = transports.get(agent);
  if (t === undefined) transports.set(agent, (t = undiciTransport(agent)));
  return t;
}
