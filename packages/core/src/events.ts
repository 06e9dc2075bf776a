import type { OutcomeKind } from './classify.js';
import type { Endpoint } from './endpoint.js';
import type { AttemptCause, LbError } from './errors.js';
import type { HeadersLike } from './headers.js';
import type { EndpointStatus } from './state.js';

/** Token usage as OpenAI reports it. */
export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

/**
 * Every event the router emits, by name. Every payload names its `endpointId` (but `request:exhausted` and
 * `config:reloaded`, which concern several). Payloads are fresh objects: keep them if you like. Subscribe with
 * `router.on(name, fn)`, which returns a disposer.
 */
export interface RouterEvents {
  /** A strategy chose an endpoint. */
  'endpoint:selected': {
    requestId: string;
    endpointId: string;
    endpoint: Endpoint;
    strategy: string;
    /** How many candidates the strategy chose among. */
    candidates: number;
    attempt: number;
    model: string | undefined;
  };
  /** An attempt is about to run. */
  'attempt:start': {
    requestId: string;
    endpointId: string;
    endpoint: Endpoint;
    attempt: number;
    model: string | undefined;
    upstreamModel: string | undefined;
  };
  /** An attempt got a response the classification calls success (or a client error passed back as is). */
  'attempt:success': {
    requestId: string;
    endpointId: string;
    endpoint: Endpoint;
    attempt: number;
    status: number | undefined;
    latencyMs: number;
    headers: HeadersLike | undefined;
    model: string | undefined;
    /** The attempt called `hold()`: its stream is still flowing and `attempt:end` follows. */
    held: boolean;
  };
  /** An attempt failed; `failover` says whether the router goes on. */
  'attempt:failure': {
    requestId: string;
    endpointId: string;
    endpoint: Endpoint;
    attempt: number;
    kind: OutcomeKind;
    status: number | undefined;
    retryAfterMs: number | undefined;
    latencyMs: number;
    countsForBreaker: boolean;
    failover: boolean;
    /** Message, key masked. */
    message: string;
    headers: HeadersLike | undefined;
    model: string | undefined;
  };
  /** A streamed (or held) attempt finished: `ok` false when the stream broke after the first byte. */
  'attempt:end': {
    requestId: string;
    endpointId: string;
    endpoint: Endpoint;
    ok: boolean;
    kind: OutcomeKind;
    durationMs: number;
    message: string | undefined;
  };
  /** Token usage became known (response body or a stream's final chunk). */
  'attempt:usage': {
    requestId: string;
    endpointId: string;
    endpoint: Endpoint;
    usage: Usage;
    model: string | undefined;
    /** What the request cost, USD, when the surface prices it (`@lb/spend`); undefined: unpriced or not priced. */
    costUsd?: number | undefined;
  };
  /** An endpoint's health changed. */
  'endpoint:state': {
    endpointId: string;
    endpoint: Endpoint;
    from: EndpointStatus;
    to: EndpointStatus;
    reason: string;
    until: number | undefined;
  };
  /**
   * An endpoint went on stream probation (`on`: a held stream of it broke after its first byte) or came off it (a
   * stream started after the break ended cleanly, or a hand enabled it). See `AttemptContext.streamProbation`.
   */
  'endpoint:probation': {
    endpointId: string;
    endpoint: Endpoint;
    on: boolean;
    requestId: string | undefined;
  };
  /**
   * Someone overrode an endpoint's health by hand (`setEndpointHealth`). Guards holding their own state (a circuit,
   * a 429 cooldown) clear it when `healthy` is true: a hand outranks them.
   */
  'endpoint:override': { endpointId: string; endpoint: Endpoint; healthy: boolean; reason: string };
  /** A request succeeded (possibly after failovers). */
  'request:done': {
    requestId: string;
    endpointId: string;
    attempts: number;
    latencyMs: number;
    status: number | undefined;
    model: string | undefined;
  };
  /** A request failed for good. */
  'request:exhausted': {
    requestId: string;
    attempts: readonly AttemptCause[];
    error: LbError;
    model: string | undefined;
  };
  /** The pool was swapped for a new config. Ids. */
  'config:reloaded': { added: string[]; removed: string[]; changed: string[] };
  /**
   * A guard's own state for an endpoint changed (a circuit opened, a 429 cooldown began). Published by guards with
   * `router.publish('guard:state', …)`; `kind` says which machine changed, so observers switch on it (never on the
   * guard's name).
   */
  'guard:state': GuardStateChange;
  /** An active health probe of an endpoint finished (`@lb/breaker`'s health checks publish it). */
  'probe:result': ProbeResult;
  /** A shared store (Redis behind the rate limiter) went degraded or answers again. */
  'store:state': StoreStateEvent;
  /** A guard was attached or removed. */
  'guard:changed': { name: string; attached: boolean };
  /**
   * A request moved on to the next model of a fallback chain (`@lb/exchange`'s `FallbackRun`): `from` could not
   * serve it for `cause`, `to` is tried next. Published by the front ends through `router.publishFallback`.
   */
  fallback: {
    requestId: string;
    from: string;
    to: string;
    cause: 'context_window' | 'content_policy' | 'default';
  };
  /**
   * Hedged requests (`@lb/exchange`'s `Hedger`, published through `Router.publishHedge`): `started` when a second
   * attempt went out because the first had not answered within `delayMs`; `won` / `lost` when the hedge (`won`) or
   * the first attempt (`lost`) answered first (the other is cancelled, counted neither as a failure nor for the
   * breaker); `skipped` when the budget refused a hedge.
   */
  hedge: {
    requestId: string;
    model: string | undefined;
    phase: 'started' | 'won' | 'lost' | 'skipped';
    /** The first attempt's endpoint. */
    endpointId: string | undefined;
    /** The hedge's endpoint, once known. */
    hedgeEndpointId: string | undefined;
    delayMs: number;
  };
  /**
   * A broken chat stream was continued on another endpoint (`@lb/exchange`'s stream continuation, published through
   * `Router.publishContinue`).
   */
  'stream:continued': {
    requestId: string;
    model: string | undefined;
    /** The endpoint whose stream broke. */
    fromEndpointId: string;
    /** The endpoint that continued it. */
    endpointId: string;
    /** Characters of content the client had before the break. */
    prefixChars: number;
  };
}

export type RouterEventName = keyof RouterEvents;

/** Events a guard or a companion of the router (health checks, a shared store) publishes with `router.publish`. */
export type PublishedEventName = 'guard:state' | 'probe:result' | 'store:state';

/** A circuit breaker's state for an endpoint. */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated';

/** A rate limiter's cooldown for an endpoint: `cooling` after an upstream 429 or a spent upstream budget. */
export type CooldownState = 'ready' | 'cooling';

interface GuardStateBase {
  /** The guard's name (`breaker`, `ratelimit`, …). */
  guard: string;
  endpointId: string;
  /** Why, in words. Keys masked. */
  reason: string;
  /** Epoch ms when the guard expects to admit again, if known. */
  until: number | undefined;
}

/**
 * A guard's state change, by the kind of machine that changed. Declared here, generic, so that core imports no
 * sibling and any guard (ours or a plugin's) can publish one; `@lb/breaker` publishes `circuit`, `@lb/ratelimit`
 * `cooldown`.
 */
export type GuardStateChange =
  | (GuardStateBase & {
      kind: 'circuit';
      from: CircuitState;
      to: CircuitState;
      /** Consecutive counted failures at the change. */
      failures: number;
    })
  | (GuardStateBase & {
      kind: 'cooldown';
      from: CooldownState;
      to: CooldownState;
    });

/** What one active health probe found. */
export interface ProbeResult {
  endpointId: string;
  /** The probe got a 2xx. */
  ok: boolean;
  /** Classification of the outcome (`success`, `server`, `network`, `timeout`, `auth`, `rate-limit`, `client`). */
  kind: OutcomeKind;
  /** HTTP status, when a response came. */
  status: number | undefined;
  /** Time to response headers, ms. */
  responseTime: number;
  /** Epoch ms when the probe started. */
  lastCheckAt: number;
  /** What went wrong, key masked. */
  error?: string;
  /** What the probe changed: `recovered`, `marked-unhealthy`, `none`. */
  action: 'recovered' | 'marked-unhealthy' | 'none';
}

/** A shared store's state: `up` (answers within its command timeout) or `degraded`. */
export type SharedStoreState = 'up' | 'degraded';

/** A shared store's state change. */
export interface StoreStateEvent {
  readonly from: SharedStoreState;
  readonly to: SharedStoreState;
  /** Why. Never a URL or a key. */
  readonly reason: string;
  /** Replicas sharing the store. */
  readonly replicas: number;
  /** Fraction of every shared budget this replica uses while degraded: 1 ÷ replicas. */
  readonly share: number;
  /** Epoch ms. */
  readonly at: number;
}
