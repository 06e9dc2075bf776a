import type { Endpoint, Guard, Router, Veto } from '@lb/core';
import { ConfigError } from '@lb/core';
import { CountedFailure, halfOpenBackoff, NeutralOutcome } from './internal/backoff.js';
import {
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type IDisposable,
  SamplingBreaker,
} from './internal/cockatiel.js';
import { type BreakerCounts, CountingBreaker } from './internal/counting-breaker.js';
import { bool, defaultEnv, type Env, envNumber, fn, num, oneOf } from './internal/options.js';

export type { BreakerCounts };

/** A circuit's state. `isolated` is held open by hand until `reset`. */
export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

/** Options of the sampling policy (cockatiel's `SamplingBreaker`). */
export interface SamplingOptions {
  /** Failure ratio that opens the circuit, strictly between 0 and 1 (0.5 = half the calls failed). Default 0.5. */
  threshold?: number;
  /** Length of the sliding window, ms (split in slices of at most 1 s). Default 30000. */
  durationMs?: number;
  /**
   * Least throughput (requests per second over the window) before the ratio is trusted, so two failures out of
   * three calls at night do not open it. Default: cockatiel's (enough for 5 failures per second at `threshold`).
   */
  minimumRps?: number;
}

/** Growth of the open period each time a circuit opens again right after a failed half-open probe. */
export interface HalfOpenBackoffOptions {
  /** Factor per re-open. Default 2. */
  multiplier?: number;
  /** Cap, ms. Default 600000 (10 min), or `halfOpenAfterMs` when that is larger. */
  maxMs?: number;
}

/**
 * Options of {@link attachBreaker}. Explicit options beat environment variables.
 *
 * @example
 * attachBreaker(router, { threshold: 3, halfOpenAfterMs: 30_000, halfOpenBackoff: { multiplier: 2, maxMs: 300_000 } });
 */
export interface BreakerOptions {
  /**
   * `consecutive`: opens after `threshold` failures in a row (cockatiel `ConsecutiveBreaker`, gobreaker default).
   * `sampling`: opens when the failure ratio over a sliding window passes `sampling.threshold` (cockatiel
   * `SamplingBreaker`). Default `consecutive`, or `sampling` when `sampling` is given.
   */
  policy?: 'consecutive' | 'sampling';
  /** Consecutive failures that open the circuit (policy `consecutive`). Integer >= 1. Default 5. Env: `CIRCUIT_BREAKER_THRESHOLD`. */
  threshold?: number;
  /** Options of the `sampling` policy. */
  sampling?: SamplingOptions;
  /** How long a circuit stays open before one probe request may go through, ms. Default 60000. Env: `CIRCUIT_BREAKER_TIMEOUT` (seconds). */
  halfOpenAfterMs?: number;
  /** Grow the open period on each re-open after a failed probe, capped. Default: constant `halfOpenAfterMs`. */
  halfOpenBackoff?: HalfOpenBackoffOptions;
  /**
   * When the failure that opens the circuit carried a Retry-After (a 503 saying when to come back), stay open at
   * least that long (capped by `halfOpenBackoff.maxMs`, else 10 min). Default true.
   */
  honorRetryAfter?: boolean;
  /**
   * Full control over opening, as gobreaker's `ReadyToTrip`: called after each counted failure while closed with
   * this generation's counts; return true to open. Replaces `threshold` / `sampling` for the decision.
   */
  shouldTrip?: (counts: Readonly<BreakerCounts>) => boolean;
  /**
   * Count a stream that breaks after its first byte (`attempt:end` with a server, network or timeout kind) as a
   * failure, and keep a half-open probe in flight until its stream ends. With false, a stream counts as a success
   * once its headers arrived. Default true.
   */
  countStreamFailures?: boolean;
  /**
   * Longest a half-open probe may stay unsettled, ms: after that (an outcome event lost, a stream never ended) it is
   * given up and the next request probes again, so a circuit can never stay half-open for good. Default 600000.
   */
  probeTimeoutMs?: number;
  /**
   * When every candidate of a request is open (none closed, none probing), let that request probe the circuit open
   * longest instead of failing until some open period ends: Envoy's panic threshold, cockatiel's half-open with one
   * probe. One such probe at a time, at most one per `allOpenProbeIntervalMs` (fleet-wide with `peers`: a replica
   * announces its probe and the others wait for its word, at most `peerGraceMs`), so recovery follows the upstream
   * within about that interval rather than a whole `halfOpenAfterMs`. A circuit held open by an upstream's
   * Retry-After is not probed early. Default true.
   */
  probeWhenAllOpen?: boolean;
  /** Least time between two such probes, ms (see `probeWhenAllOpen`). Default 1000. */
  allOpenProbeIntervalMs?: number;
  /** Guard name (in router snapshots and vetoes). Default `breaker`. */
  name?: string;
  /**
   * Clock, epoch ms. Default `Date.now`. cockatiel itself reads `Date.now`, so a replacement must follow it (use
   * `vi.useFakeTimers()` in tests rather than a free-running fake clock).
   */
  now?: () => number;
  /** Environment to read `CIRCUIT_BREAKER_*` from. Default `process.env` (none in browsers). */
  env?: Env;
  /**
   * Share circuit changes with the other replicas routing to the same endpoints (several lb-server processes behind
   * one load balancer): a circuit one replica opens opens on the others, which wait for that replica's half-open
   * probe (see `peerGraceMs`); a probe that passes on one closes the circuit on the others. Any publish/subscribe
   * channel will do; lb-server uses Redis pub/sub when `server.redisUrl` is set. Endpoint ids must be the same on
   * every replica.
   */
  peers?: BreakerPeers;
  /** This replica's name in shared changes (`opened on replica …`). Default: random. */
  replicaId?: string;
  /**
   * How long past the end of another replica's open period this replica keeps a circuit it opened on that replica's
   * word, waiting for the word on its probe (passed: closed; failed: the next open period), before probing itself,
   * ms. So a fleet sends one probe per open period, not one per replica. Default 30000.
   */
  peerGraceMs?: number;
}

/**
 * A channel between replicas for {@link BreakerOptions.peers}: messages are short strings the breaker writes and
 * reads itself (a replica ignores its own); the channel only carries them to every other subscriber.
 *
 * @example
 * // ioredis: one connection publishes, a duplicate subscribes
 * const peers = {
 *   publish: (m) => void redis.publish('lb:breaker', m).catch(() => {}),
 *   subscribe: (fn) => { const sub = redis.duplicate(); sub.subscribe('lb:breaker'); sub.on('message', (_c, m) => fn(m)); return () => sub.disconnect(); },
 * };
 */
export interface BreakerPeers {
  /** Sends one message to the other replicas. Must not throw (a lost message only delays the others). */
  publish(message: string): void;
  /**
   * Calls `onMessage` with every message published by any replica; returns the unsubscribe. Calls `onSubscribed`
   * (when given) each time the subscription is live and `publish` can be heard (at start, after a reconnect): the
   * replica then asks the others for the circuits they hold open, so one that starts during an outage learns of it.
   */
  subscribe(onMessage: (message: string) => void, onSubscribed?: () => void): () => void;
}

/** A circuit changed state. */
export interface BreakerStateChange {
  endpointId: string;
  from: BreakerState;
  to: BreakerState;
  /** Why, in words (`5 consecutive failures; last: HTTP 503`, `probe succeeded`, `health probe passed`, …). Keys masked. */
  reason: string;
  /** Epoch ms. */
  at: number;
  /** When an open circuit lets a probe through, epoch ms. */
  until: number | undefined;
  /** Consecutive counted failures at the change. */
  failures: number;
}

/** One endpoint's circuit, for health pages: what `snapshot()` and the guard's `describe()` give. */
export type BreakerSnapshot = {
  state: BreakerState;
  /** Consecutive counted failures in this generation. */
  failures: number;
  counts: BreakerCounts;
  /** How many times this circuit opened (isolation excluded). */
  opens: number;
  /** Epoch ms when it opened (state `open`). */
  openedAt?: number;
  /** Epoch ms when a probe may go through (state `open`). */
  halfOpenAt?: number;
  /** Epoch ms of the last change. */
  since?: number;
  /** Why it is in this state. */
  reason?: string;
  /** Last counted failure, key masked. */
  lastFailure?: string;
};

/**
 * What {@link attachBreaker} returns: per-endpoint control and a view of every circuit.
 *
 * @example
 * const breaker = attachBreaker(router);
 * breaker.on('state', (e) => log.warn(`${e.endpointId}: ${e.from} -> ${e.to} (${e.reason})`));
 * breaker.isolate('primary'); // maintenance: no traffic until reset
 * breaker.reset('primary');
 */
export interface BreakerHandle {
  /** The guard's name. */
  readonly name: string;
  /** An endpoint's circuit state (`closed` for unknown ids and circuits never used). */
  state(id: string): BreakerState;
  /** Holds an endpoint's circuit open until {@link BreakerHandle.reset}. Returns false for an unknown id. */
  isolate(id: string, reason?: string): boolean;
  /** Closes an endpoint's circuit and clears its counts (ends an isolation too). Returns false for an unknown id. */
  reset(id: string): boolean;
  /**
   * Tells the breaker an out-of-band probe (a health check) passed: an open circuit goes half-open and closes
   * through cockatiel's own transitions (closed a tick later), without risking a user request. Returns true when
   * the probe moved an open circuit on; false when there was nothing to do (closed, half-open, isolated, unknown).
   */
  recordProbe(id: string, ok: boolean): boolean;
  /** Every endpoint's circuit, by endpoint id. */
  snapshot(): Record<string, BreakerSnapshot>;
  /** Subscribes to state changes; returns the disposer. */
  on(event: 'state', listener: (change: BreakerStateChange) => void): () => void;
  /** Removes the guard and every listener; pending outcomes are dropped. */
  dispose(): void;
}

type View =
  | { readonly state: 'closed'; readonly since: number }
  | {
      readonly state: 'open';
      readonly since: number;
      readonly halfOpenAt: number;
      readonly veto: Veto;
    }
  | { readonly state: 'half-open'; readonly since: number }
  | { readonly state: 'isolated'; readonly since: number; readonly veto: Veto };

interface Circuit {
  readonly id: string;
  policy: CircuitBreakerPolicy;
  counter: CountingBreaker;
  subs: IDisposable[];
  view: View;
  reason: string | undefined;
  /** Reason for the next transitions we trigger ourselves (cleared when the circuit settles closed or open). */
  override: string | undefined;
  /** The open period cockatiel chose last (it keeps it private). */
  nextOpenMs: number;
  /** An upstream's Retry-After set that open period: it is not probed early (see `probeWhenAllOpen`). */
  openByRetryAfter: boolean;
  /** Epoch ms until which another replica's all-open probe of this endpoint is awaited (0: none). */
  peerProbeUntil: number;
  /** The open veto naming the next early probe's time as `until` (rebuilt when that time moves). */
  rescueVeto: Veto | undefined;
  opens: number;
  lastFailure: string | undefined;
  /** The half-open probe in flight. */
  probe: Pending | undefined;
  /** The transitions under way were started by another replica's message: they are not shared back. */
  quiet: boolean;
  /** The replica whose word holds this circuit open (it waits for that replica's probe); cleared by any transition. */
  heldFor: string | undefined;
  /**
   * Requests with an attempt in flight that started while this circuit was closed (on its current policy). Their
   * outcomes are counted without a cockatiel `execute` per request: a success straight into the circuit's breaker
   * (all cockatiel does with a success while closed), a counted failure through `policy.execute`, which decides
   * whether to open. A short list scanned by identity: no per-request object, promise or map entry.
   */
  direct: string[];
}

/** One attempt counted inside a cockatiel `execute`, settled when its outcome arrives on the bus. */
interface Pending {
  readonly circuit: Circuit;
  readonly policy: CircuitBreakerPolicy;
  readonly endpointId: string;
  readonly probe: boolean;
  requestId: string | undefined;
  resolve: (v?: unknown) => void;
  reject: (e: Error) => void;
  started: boolean;
  streaming: boolean;
  next: Pending | undefined;
}

const NEUTRAL = new NeutralOutcome();
const PROBE_VETO: Veto = Object.freeze({ reason: 'half-open: a probe request is in flight' });
const noop = () => {};
const COUNTING_KINDS: ReadonlySet<string> = new Set(['server', 'network', 'timeout']);
const TO_NAME: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

interface Resolved {
  name: string;
  policy: 'consecutive' | 'sampling';
  threshold: number;
  sampling: Required<Omit<SamplingOptions, 'minimumRps'>> & { minimumRps?: number };
  halfOpenAfterMs: number;
  multiplier: number;
  maxMs: number;
  maxRetryAfterMs: number;
  shouldTrip: ((counts: Readonly<BreakerCounts>) => boolean) | undefined;
  countStreamFailures: boolean;
  probeTimeoutMs: number;
  probeWhenAllOpen: boolean;
  allOpenProbeIntervalMs: number;
  now: () => number;
  peers: BreakerPeers | undefined;
  replicaId: string;
  peerGraceMs: number;
}

/** A shared change, as sent between replicas. */
interface PeerMessage {
  v: 1;
  /** Replica that sent it. */
  from: string;
  endpointId: string;
  /**
   * `hello`: a replica (re)joined; the others answer with the circuits they opened themselves (`endpointId` '').
   * `probing`: every circuit was open and the sender probes this one early; wait `forMs` for its word.
   */
  state: 'open' | 'closed' | 'hello' | 'probing';
  /** Open: how long the sender's circuit stays open from now, ms (a duration: clocks of replicas differ). */
  forMs?: number;
  reason: string;
}

/** The longest remote open period taken on, ms: a day (a message is only as trustworthy as its sender). */
const MAX_PEER_OPEN_MS = 86_400_000;

function resolveOptions(o: BreakerOptions): Resolved {
  if (o === null || typeof o !== 'object')
    throw new ConfigError(`attachBreaker: options must be an object, received ${String(o)}`);
  const env = o.env ?? defaultEnv();
  const policy = oneOf('breaker.policy', o.policy, ['consecutive', 'sampling'] as const);
  const threshold =
    num('breaker.threshold', o.threshold, 1, Number.POSITIVE_INFINITY, true) ??
    envNumber(env, 'CIRCUIT_BREAKER_THRESHOLD', 1, { integer: true }) ??
    5;
  if (o.sampling !== undefined && (o.sampling === null || typeof o.sampling !== 'object'))
    throw new ConfigError(`breaker.sampling: expected an object, received ${JSON.stringify(o.sampling)}`);
  const s = o.sampling ?? {};
  const ratio = num('breaker.sampling.threshold', s.threshold, 0, 1) ?? 0.5;
  if (ratio <= 0 || ratio >= 1)
    throw new ConfigError(
      `breaker.sampling.threshold: expected a ratio strictly between 0 and 1, received ${ratio}`,
    );
  const halfOpenAfterMs =
    num('breaker.halfOpenAfterMs', o.halfOpenAfterMs, 0) ??
    envNumber(env, 'CIRCUIT_BREAKER_TIMEOUT', 0, { unit: 's' }) ??
    60_000;
  const b = o.halfOpenBackoff;
  if (b !== undefined && (b === null || typeof b !== 'object'))
    throw new ConfigError(`breaker.halfOpenBackoff: expected an object, received ${JSON.stringify(b)}`);
  const multiplier = b ? (num('breaker.halfOpenBackoff.multiplier', b.multiplier, 1) ?? 2) : 1;
  const maxMs = b
    ? (num('breaker.halfOpenBackoff.maxMs', b.maxMs, halfOpenAfterMs) ?? Math.max(halfOpenAfterMs, 600_000))
    : halfOpenAfterMs;
  fn('breaker.shouldTrip', o.shouldTrip);
  fn('breaker.now', o.now);
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === ''))
    throw new ConfigError(`breaker.name: expected a non-empty string, received ${JSON.stringify(o.name)}`);
  return {
    name: o.name ?? 'breaker',
    policy: policy ?? (o.sampling ? 'sampling' : 'consecutive'),
    threshold,
    sampling: {
      threshold: ratio,
      durationMs: num('breaker.sampling.durationMs', s.durationMs, 1) ?? 30_000,
      minimumRps: num('breaker.sampling.minimumRps', s.minimumRps, 0),
    },
    halfOpenAfterMs,
    multiplier,
    maxMs,
    maxRetryAfterMs: (bool('breaker.honorRetryAfter', o.honorRetryAfter) ?? true) ? (b ? maxMs : 600_000) : 0,
    shouldTrip: o.shouldTrip,
    countStreamFailures: bool('breaker.countStreamFailures', o.countStreamFailures) ?? true,
    probeTimeoutMs: num('breaker.probeTimeoutMs', o.probeTimeoutMs, 1) ?? 600_000,
    probeWhenAllOpen: bool('breaker.probeWhenAllOpen', o.probeWhenAllOpen) ?? true,
    allOpenProbeIntervalMs: num('breaker.allOpenProbeIntervalMs', o.allOpenProbeIntervalMs, 0) ?? 1000,
    now: o.now ?? Date.now,
    peers: peersOption(o.peers),
    peerGraceMs: num('breaker.peerGraceMs', o.peerGraceMs, 0) ?? 30_000,
    replicaId:
      o.replicaId === undefined
        ? Math.floor(Math.random() * 0x100000000)
            .toString(16)
            .padStart(8, '0')
        : nonEmpty('breaker.replicaId', o.replicaId),
  };
}

function peersOption(p: unknown): BreakerPeers | undefined {
  if (p === undefined) return undefined;
  const x = p as Partial<BreakerPeers> | null;
  if (!x || typeof x.publish !== 'function' || typeof x.subscribe !== 'function')
    throw new ConfigError(
      `breaker.peers: expected { publish(message), subscribe(onMessage) }, received ${p === null ? 'null' : typeof p}`,
    );
  return x as BreakerPeers;
}

function nonEmpty(name: string, v: unknown): string {
  if (typeof v !== 'string' || v === '')
    throw new ConfigError(`${name}: expected a non-empty string, received ${JSON.stringify(v)}`);
  return v;
}

/** A peer's message, or undefined when it is not one (another version, garbage on the channel). */
function readPeerMessage(raw: unknown): PeerMessage | undefined {
  if (typeof raw !== 'string' || raw.length > 4096) return undefined;
  let m: Partial<PeerMessage>;
  try {
    m = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (
    m === null ||
    typeof m !== 'object' ||
    m.v !== 1 ||
    typeof m.from !== 'string' ||
    typeof m.endpointId !== 'string' ||
    typeof m.reason !== 'string' ||
    (m.state !== 'closed' &&
      m.state !== 'hello' &&
      ((m.state !== 'open' && m.state !== 'probing') || typeof m.forMs !== 'number' || !(m.forMs > 0)))
  )
    return undefined;
  return m as PeerMessage;
}

class Breaker implements BreakerHandle, Guard {
  readonly name: string;
  /** `admit` reads the breaker's own clock, and only while a circuit is open or probing: a pick needs no clock. */
  readonly usesNow = false;
  /** Opens circuits itself: the router's default outlier ejection steps aside while a breaker is attached. */
  readonly ejects = true;
  readonly #router: Router;
  readonly #o: Resolved;
  readonly #now: () => number;
  readonly #circuits = new Map<string, Circuit>();
  readonly #pending = new Map<string, Pending>();
  readonly #listeners = new Set<(c: BreakerStateChange) => void>();
  #offs: (() => void)[] = [];
  #disposed = false;
  /** Epoch ms before which no all-open probe starts (see `probeWhenAllOpen`). */
  #nextRescueAt = 0;

  constructor(router: Router, options: BreakerOptions) {
    if (!router || typeof router.addGuard !== 'function' || typeof router.on !== 'function')
      throw new ConfigError(`attachBreaker: expected an @lb/core Router, received ${String(router)}`);
    this.#o = resolveOptions(options);
    this.name = this.#o.name;
    if (router.guards.some((g) => g.name === this.name))
      throw new ConfigError(
        `attachBreaker: a guard named ${JSON.stringify(this.name)} is already attached; dispose it or pass another name`,
      );
    this.#now = this.#o.now;
    this.#router = router;
    const r = router;
    this.#offs = [
      r.on('attempt:success', (e) => this.#onSuccess(e)),
      r.on('attempt:failure', (e) => this.#onFailure(e)),
      r.on('attempt:end', (e) => this.#onEnd(e)),
      r.on('config:reloaded', (e) => {
        for (const id of e.removed) this.#drop(id);
      }),
      // Enabled by hand: a hand outranks an open circuit.
      r.on('endpoint:override', (e) => {
        if (e.healthy && this.#circuits.has(e.endpointId)) this.reset(e.endpointId);
      }),
    ];
    this.#offs.push(r.addGuard(this));
    const peers = this.#o.peers;
    if (peers !== undefined) {
      const off = peers.subscribe(
        (m) => this.#onPeer(m),
        () => this.#share('', 'hello', 'joined'),
      );
      if (typeof off === 'function') this.#offs.push(off);
    }
  }

  // ------------------------------------------------------------- guard

  admit(endpoint: Endpoint): true | Veto {
    const c = this.#circuits.get(endpoint.id);
    if (c === undefined) return true;
    const v = c.view;
    switch (v.state) {
      case 'closed':
        return true;
      case 'open': {
        const now = this.#now();
        if (now >= v.halfOpenAt) return true;
        // The next early probe comes before the open period ends (see `probeWhenAllOpen`): say so, so a refusal
        // when every circuit is open asks the caller back then (Retry-After), not at the end of the open period.
        const at = this.#nextRescueAt;
        if (at <= now || at >= v.halfOpenAt || c.openByRetryAfter || !this.#o.probeWhenAllOpen) return v.veto;
        const rv = c.rescueVeto;
        if (rv?.until !== at || rv.reason !== v.veto.reason)
          c.rescueVeto = Object.freeze({ reason: v.veto.reason, until: at });
        return c.rescueVeto!;
      }
      case 'half-open':
        return this.#now() - v.since >= this.#o.probeTimeoutMs ? true : PROBE_VETO;
      default:
        return v.veto;
    }
  }

  /**
   * Every candidate was refused: when every one is open on this breaker's word (none closed, none probing, none
   * awaited from another replica), the one open longest may probe now. Pure: `acquire` starts the probe.
   */
  rescue(candidates: readonly Endpoint[]): Endpoint | undefined {
    if (!this.#o.probeWhenAllOpen) return undefined;
    const now = this.#now();
    if (now < this.#nextRescueAt) return undefined;
    let best: Endpoint | undefined;
    let oldest = Number.POSITIVE_INFINITY;
    for (const ep of candidates) {
      const c = this.#circuits.get(ep.id);
      if (c === undefined || c.peerProbeUntil > now) return undefined;
      const v = c.view;
      if (v.state === 'isolated') continue;
      // Closed, probing, or due for its own probe (another guard refuses it): not a total outage on our word.
      if (v.state !== 'open' || now >= v.halfOpenAt) return undefined;
      if (!c.openByRetryAfter && v.since < oldest) {
        oldest = v.since;
        best = ep;
      }
    }
    return best;
  }

  acquire(endpoint: Endpoint, _request?: unknown, _now?: number, requestId?: string): void {
    const c = this.#circuitFor(endpoint.id);
    let v = c.view;
    if (v.state === 'half-open' && this.#now() - v.since >= this.#o.probeTimeoutMs) {
      const lost = c.probe;
      if (lost?.requestId !== undefined) this.#take(lost.requestId, lost.endpointId);
      this.#rearm(c, `probe unsettled after ${this.#o.probeTimeoutMs} ms; probing again`);
      lost?.reject(NEUTRAL);
      v = c.view;
    }
    if (v.state === 'half-open' || v.state === 'isolated') return;
    let early = false;
    if (v.state === 'open' && this.#now() < v.halfOpenAt) {
      // Only `rescue` lets the router pick an open circuit before its time: every candidate is open.
      const now = this.#now();
      if (!this.#o.probeWhenAllOpen || now < this.#nextRescueAt) return;
      this.#nextRescueAt = now + this.#o.allOpenProbeIntervalMs;
      // Hydrate cockatiel with the open period over, so the probe runs through its own half-open transitions.
      const snap = c.policy.toJSON() as { ownState: { value: CircuitState; openedAt: number } };
      snap.ownState.openedAt = 0;
      this.#replace(c, snap);
      c.override = `every candidate open: probing the one open longest (${now - v.since} ms)`;
      early = true;
    }
    if (v.state === 'closed' && c.policy.state === CircuitState.Closed) {
      // No request to bind the outcome to: do not count it.
      if (requestId !== undefined) c.direct.push(requestId);
      return;
    }
    const p: Pending = {
      circuit: c,
      policy: c.policy,
      endpointId: endpoint.id,
      probe: v.state === 'open',
      requestId: undefined,
      resolve: noop,
      reject: noop,
      started: false,
      streaming: false,
      next: undefined,
    };
    c.policy
      .execute(
        () =>
          new Promise((resolve, reject) => {
            p.resolve = resolve;
            p.reject = reject;
            p.started = true;
          }),
      )
      .catch(noop);
    if (early) {
      // The override names the early half-open only; the probe's outcome gives the next reason.
      c.override = undefined;
      if (p.started) this.#share(c.id, 'probing', c.reason ?? 'probing', this.#o.peerGraceMs || 1);
    }
    // cockatiel refused (its clock says not yet): nothing to count.
    if (!p.started) return;
    if (p.probe) c.probe = p;
    if (requestId !== undefined) {
      // The router names the request: bind the outcome to it at once.
      p.requestId = requestId;
      p.next = this.#pending.get(requestId);
      this.#pending.set(requestId, p);
    } else {
      // No request to bind the outcome to: do not count it.
      this.#settle(p, NEUTRAL);
    }
  }

  describe(endpoint: Endpoint): BreakerSnapshot {
    return this.#describe(endpoint.id);
  }

  // ------------------------------------------------------------- outcomes

  #take(requestId: string, endpointId: string): Pending | undefined {
    let p = this.#pending.get(requestId);
    let prev: Pending | undefined;
    while (p !== undefined && p.endpointId !== endpointId) {
      prev = p;
      p = p.next;
    }
    if (p === undefined) return undefined;
    if (prev) prev.next = p.next;
    else if (p.next) this.#pending.set(requestId, p.next);
    else this.#pending.delete(requestId);
    p.next = undefined;
    return p;
  }

  #onSuccess(e: { requestId: string; endpointId: string; held: boolean }): void {
    // A held attempt (a stream the router still counts in flight) is judged when its stream ends (`attempt:end`).
    const held = this.#o.countStreamFailures && e.held;
    if (held) {
      // A direct attempt stays listed until its stream ends (`attempt:end`).
      const p = this.#pending.size ? this.#find(e.requestId, e.endpointId) : undefined;
      if (p) p.streaming = true;
      return;
    }
    this.#count(e.requestId, e.endpointId, undefined);
  }

  /** Settles this request's attempt on the endpoint, counted through cockatiel or directly (see `Circuit.direct`). */
  #count(requestId: string, endpointId: string, outcome: Error | undefined): void {
    const p = this.#pending.size ? this.#take(requestId, endpointId) : undefined;
    if (p !== undefined) this.#settle(p, outcome);
    else this.#countDirect(requestId, endpointId, outcome);
  }

  /**
   * Counts the outcome of a direct attempt (see `Circuit.direct`), taking it off its circuit's list, if the circuit
   * listed it and is still closed.
   */
  #countDirect(requestId: string, endpointId: string, outcome: Error | undefined): void {
    const c = this.#circuits.get(endpointId);
    if (c === undefined) return;
    const d = c.direct;
    const i = d.indexOf(requestId);
    if (i < 0) return;
    const last = d.pop() as string;
    if (i < d.length) d[i] = last;
    const policy = c.policy;
    if (policy.state !== CircuitState.Closed) return;
    if (outcome === undefined) c.counter.success(CircuitState.Closed);
    else if (outcome instanceof CountedFailure) {
      c.lastFailure = outcome.message;
      policy.execute(() => Promise.reject(outcome)).catch(noop);
    }
  }

  #find(requestId: string, endpointId: string): Pending | undefined {
    let p = this.#pending.get(requestId);
    while (p !== undefined && p.endpointId !== endpointId) p = p.next;
    return p;
  }

  #onFailure(e: {
    requestId: string;
    endpointId: string;
    kind: string;
    countsForBreaker: boolean;
    message: string;
    retryAfterMs: number | undefined;
  }): void {
    const outcome = e.countsForBreaker ? new CountedFailure(e.message, e.retryAfterMs) : NEUTRAL;
    const p = this.#pending.size ? this.#take(e.requestId, e.endpointId) : undefined;
    if (p === undefined) this.#countDirect(e.requestId, e.endpointId, outcome);
    else if (!e.countsForBreaker && e.kind === 'aborted' && p.probe && p.policy === p.circuit.policy) {
      this.#rearm(p.circuit, 'probe aborted by its caller; the next request probes');
      p.reject(NEUTRAL);
    } else this.#settle(p, outcome);
  }

  #onEnd(e: {
    requestId: string;
    endpointId: string;
    ok: boolean;
    kind: string;
    message: string | undefined;
  }): void {
    const outcome =
      !e.ok && COUNTING_KINDS.has(e.kind)
        ? new CountedFailure(e.message ?? `stream broke (${e.kind})`, undefined)
        : undefined;
    this.#count(e.requestId, e.endpointId, outcome);
  }

  #settle(p: Pending, outcome: Error | undefined): void {
    if (outcome === undefined) p.resolve();
    else {
      if (outcome instanceof CountedFailure && p.policy === p.circuit.policy)
        p.circuit.lastFailure = outcome.message;
      p.reject(outcome);
    }
  }

  /** A half-open probe proved nothing (its caller aborted, it got lost): open again, with the next request probing. */
  #rearm(c: Circuit, why: string): void {
    if (c.view.state !== 'half-open') return;
    // cockatiel serialises a half-open circuit as open since epoch 0: hydrating it gives an open circuit, due now.
    this.#replace(c, c.policy.toJSON());
    const now = this.#now();
    this.#setView(c, this.#openView(c, now, why, now), why);
  }

  // ------------------------------------------------------------- circuits

  #circuitFor(id: string): Circuit {
    let c = this.#circuits.get(id);
    if (c === undefined) {
      const now = this.#now();
      c = {
        id,
        policy: undefined as unknown as CircuitBreakerPolicy,
        counter: this.#newCounter(),
        subs: [],
        view: { state: 'closed', since: now },
        reason: undefined,
        override: undefined,
        nextOpenMs: this.#o.halfOpenAfterMs,
        openByRetryAfter: false,
        peerProbeUntil: 0,
        rescueVeto: undefined,
        opens: 0,
        lastFailure: undefined,
        probe: undefined,
        quiet: false,
        heldFor: undefined,
        direct: [],
      };
      this.#replace(c, undefined);
      this.#circuits.set(id, c);
    }
    return c;
  }

  #newCounter(): CountingBreaker {
    const o = this.#o;
    const inner =
      o.policy === 'sampling'
        ? new SamplingBreaker({
            threshold: o.sampling.threshold,
            duration: o.sampling.durationMs,
            minimumRps: o.sampling.minimumRps,
          })
        : new ConsecutiveBreaker(o.threshold);
    return new CountingBreaker(inner, o.shouldTrip);
  }

  /** Swaps in a new cockatiel policy (fresh, or hydrated from `initialState`); the old one is forgotten. */
  #replace(c: Circuit, initialState: unknown): void {
    for (const s of c.subs) s.dispose();
    // Attempts started on the old policy do not count into the new one.
    c.direct.length = 0;
    const o = this.#o;
    const policy = circuitBreaker(
      handleWhen((e) => e instanceof CountedFailure),
      {
        breaker: c.counter,
        halfOpenAfter: halfOpenBackoff(
          {
            baseMs: o.halfOpenAfterMs,
            multiplier: o.multiplier,
            maxMs: o.maxMs,
            maxRetryAfterMs: o.maxRetryAfterMs,
          },
          (ms, byRetryAfter) => {
            c.nextOpenMs = ms;
            c.openByRetryAfter = byRetryAfter;
          },
        ),
        initialState,
      },
    );
    c.policy = policy;
    c.probe = undefined;
    c.subs = [
      policy.onBreak((r) => {
        if ('error' in r && r.error instanceof CountedFailure) c.lastFailure = r.error.message;
      }),
      policy.onStateChange((s) => {
        if (c.policy === policy) this.#transition(c, s);
      }),
    ];
  }

  #openView(c: Circuit, now: number, reason: string, halfOpenAt = now + c.nextOpenMs): View {
    return {
      state: 'open',
      since: now,
      halfOpenAt,
      veto: Object.freeze({ reason: `open: ${reason}`, until: halfOpenAt }),
    };
  }

  #transition(c: Circuit, s: CircuitState): void {
    c.heldFor = undefined;
    const now = this.#now();
    const from = c.view.state;
    const to = TO_NAME[s];
    const last = c.lastFailure ? `; last: ${c.lastFailure}` : '';
    let reason: string;
    let view: View;
    switch (to) {
      case 'open': {
        const n = c.counter.counts;
        reason =
          c.override ??
          (from === 'half-open'
            ? `probe failed${last}`
            : this.#o.shouldTrip
              ? `shouldTrip after ${n.consecutiveFailures} consecutive / ${n.totalFailures} of ${n.requests} failures${last}`
              : this.#o.policy === 'sampling'
                ? `failure rate above ${this.#o.sampling.threshold} (${n.totalFailures} of ${n.requests} failed)${last}`
                : `${n.consecutiveFailures} consecutive failures${last}`);
        c.opens++;
        c.override = undefined;
        view = this.#openView(c, now, reason);
        break;
      }
      case 'half-open':
        c.counter.clear();
        reason = c.override ?? 'open period over: letting one probe request through';
        view = { state: 'half-open', since: now };
        break;
      case 'closed':
        c.counter.clear();
        reason = c.override ?? (from === 'half-open' ? 'probe succeeded' : 'isolation ended');
        c.override = undefined;
        view = { state: 'closed', since: now };
        break;
      default:
        reason = c.override ?? 'isolated by hand';
        c.override = undefined;
        view = { state: 'isolated', since: now, veto: Object.freeze({ reason: `isolated: ${reason}` }) };
    }
    this.#setView(c, view, reason);
    if (to === 'open' || to === 'closed') {
      // Settled: share what this replica found out itself (a probe failed or passed, failures opened it).
      if (!c.quiet && from !== 'isolated' && view.state === 'open')
        this.#share(c.id, 'open', reason, view.halfOpenAt - now);
      else if (!c.quiet && from === 'half-open') this.#share(c.id, 'closed', reason);
      c.quiet = false;
    }
  }

  // ------------------------------------------------------------- peers

  #share(endpointId: string, state: PeerMessage['state'], reason: string, forMs?: number): void {
    const peers = this.#o.peers;
    if (peers === undefined) return;
    const m: PeerMessage = { v: 1, from: this.#o.replicaId, endpointId, state, forMs, reason };
    try {
      peers.publish(JSON.stringify(m));
    } catch {
      // A lost message only delays the other replicas: each still judges the endpoint by its own traffic.
    }
  }

  #onPeer(raw: unknown): void {
    const m = readPeerMessage(raw);
    if (m === undefined || m.from === this.#o.replicaId || this.#disposed) return;
    if (m.state === 'hello') {
      // A replica (re)joined: tell it of the circuits this one opened on what it saw (not those held on a peer's
      // word: their opener answers for them).
      const now = this.#now();
      for (const c of this.#circuits.values()) {
        const v = c.view;
        if (v.state === 'open' && c.heldFor === undefined && v.halfOpenAt > now)
          this.#share(c.id, 'open', c.reason ?? 'open', v.halfOpenAt - now);
      }
      return;
    }
    if (this.#router.getEndpoint(m.endpointId) === undefined) return;
    if (m.state === 'probing') {
      // Another replica probes this endpoint because every circuit was open there: wait for its word (its `open` or
      // `closed`), at most `forMs`, and start no all-open probe of this replica's own meanwhile.
      const now = this.#now();
      const until = now + Math.min(m.forMs!, MAX_PEER_OPEN_MS);
      this.#circuitFor(m.endpointId).peerProbeUntil = until;
      this.#nextRescueAt = Math.max(this.#nextRescueAt, now + this.#o.allOpenProbeIntervalMs);
      return;
    }
    const known = this.#circuits.get(m.endpointId);
    if (known !== undefined) known.peerProbeUntil = 0;
    if (m.state === 'open') {
      // A closed circuit takes a peer's word, and one held on a peer's word takes its next one (its probe failed):
      // one that is open, probing or isolated on what this replica saw itself knows better.
      const c = this.#circuitFor(m.endpointId);
      const v = c.view.state;
      if (v !== 'closed' && !(v === 'open' && c.heldFor !== undefined)) return;
      // Open until the sender's probe is due, and a grace for its outcome to arrive; then this replica probes.
      const forMs = Math.min(m.forMs!, MAX_PEER_OPEN_MS) + this.#o.peerGraceMs;
      // cockatiel hydrated open, due for a probe then.
      const first = Math.min(this.#o.maxMs, this.#o.halfOpenAfterMs);
      const { breakerState } = c.policy.toJSON() as { breakerState: unknown };
      this.#replace(c, {
        ownState: { value: CircuitState.Open, openedAt: Date.now() + forMs - first, attemptNo: 1 },
        breakerState,
      });
      const now = this.#now();
      const why = `opened on replica ${m.from}: ${m.reason}`;
      this.#setView(c, this.#openView(c, now, why, now + forMs), why);
      c.heldFor = m.from;
      return;
    }
    // A probe passed on another replica: an open circuit here closes through its own probe transitions.
    const c = this.#circuits.get(m.endpointId);
    if (c === undefined || c.view.state !== 'open') return;
    c.quiet = true;
    this.#probePassed(c, `probe passed on replica ${m.from}`);
  }

  #setView(c: Circuit, view: View, why: string): void {
    const from = c.view.state;
    c.view = view;
    if (view.state !== 'half-open') c.probe = undefined;
    c.reason = why;
    if (from === view.state) return;
    this.#router.publish('guard:state', {
      kind: 'circuit',
      failures: c.counter.counts.consecutiveFailures,
      guard: this.name,
      endpointId: c.id,
      from,
      to: view.state,
      reason: why,
      until: view.state === 'open' ? view.halfOpenAt : undefined,
    });
    if (this.#listeners.size === 0) return;
    const change: BreakerStateChange = {
      endpointId: c.id,
      from,
      to: view.state,
      reason: why,
      at: view.since,
      until: view.state === 'open' ? view.halfOpenAt : undefined,
      failures: c.counter.counts.consecutiveFailures,
    };
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch {
        // A throwing listener must not break routing.
      }
    }
  }

  #drop(id: string): void {
    const c = this.#circuits.get(id);
    if (c === undefined) return;
    for (const s of c.subs) s.dispose();
    this.#circuits.delete(id);
  }

  #describe(id: string): BreakerSnapshot {
    const c = this.#circuits.get(id);
    if (c === undefined) {
      return {
        state: 'closed',
        failures: 0,
        counts: {
          requests: 0,
          totalSuccesses: 0,
          totalFailures: 0,
          consecutiveSuccesses: 0,
          consecutiveFailures: 0,
        },
        opens: 0,
      };
    }
    const v = c.view;
    const out: BreakerSnapshot = {
      state: v.state,
      failures: c.counter.counts.consecutiveFailures,
      counts: { ...c.counter.counts },
      opens: c.opens,
      since: v.since,
    };
    if (v.state === 'open') {
      out.openedAt = v.since;
      out.halfOpenAt = v.halfOpenAt;
    }
    if (c.reason !== undefined) out.reason = c.reason;
    if (c.lastFailure !== undefined) out.lastFailure = c.lastFailure;
    return out;
  }

  // ------------------------------------------------------------- handle

  state(id: string): BreakerState {
    return this.#circuits.get(id)?.view.state ?? 'closed';
  }

  isolate(id: string, reason?: string): boolean {
    if (this.#router.getEndpoint(id) === undefined) return false;
    const c = this.#circuitFor(id);
    if (c.view.state === 'isolated') return true;
    c.override = reason ?? 'isolated by hand';
    c.policy.isolate();
    return true;
  }

  reset(id: string): boolean {
    if (this.#router.getEndpoint(id) === undefined) return false;
    const c = this.#circuits.get(id);
    if (c === undefined) return true;
    c.counter = this.#newCounter();
    c.lastFailure = undefined;
    c.override = undefined;
    c.nextOpenMs = this.#o.halfOpenAfterMs;
    c.openByRetryAfter = false;
    c.heldFor = undefined;
    this.#replace(c, undefined);
    const from = c.view.state;
    this.#setView(c, { state: 'closed', since: this.#now() }, 'reset by hand');
    if (from === 'open' || from === 'half-open') this.#share(id, 'closed', 'reset by hand');
    return true;
  }

  recordProbe(id: string, ok: boolean): boolean {
    const c = this.#circuits.get(id);
    if (!ok || c === undefined || c.view.state !== 'open') return false;
    return this.#probePassed(c, 'health probe passed');
  }

  /** An out-of-band probe passed on an open circuit: half-open, then closed, through cockatiel's own transitions. */
  #probePassed(c: Circuit, why: string): boolean {
    if (c.view.state !== 'open') return false;
    if (this.#now() < c.view.halfOpenAt) {
      // Hydrate cockatiel with the open period already over, so the probe runs through its own transitions.
      const snap = c.policy.toJSON() as { ownState: { value: CircuitState; openedAt: number } };
      snap.ownState.openedAt = 0;
      this.#replace(c, snap);
    }
    c.override = why;
    c.policy.execute(() => Promise.resolve()).catch(noop);
    return (c.view as View).state === 'half-open';
  }

  snapshot(): Record<string, BreakerSnapshot> {
    const out: Record<string, BreakerSnapshot> = {};
    for (const ep of this.#router.endpoints) out[ep.id] = this.#describe(ep.id);
    return out;
  }

  on(event: 'state', listener: (change: BreakerStateChange) => void): () => void {
    if (event !== 'state')
      throw new TypeError(`breaker.on: unknown event ${JSON.stringify(event)}; known: 'state'`);
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const off of this.#offs) off();
    this.#offs = [];
    for (const c of this.#circuits.values()) for (const s of c.subs) s.dispose();
    for (let p of this.#pending.values()) {
      for (; p !== undefined; p = p.next!) p.reject(NEUTRAL);
    }
    this.#pending.clear();
    this.#circuits.clear();
    this.#listeners.clear();
  }
}

/**
 * Attaches per-endpoint circuit breakers (cockatiel 3) to a router: a guard that vetoes endpoints whose circuit is
 * open, plus listeners that count every attempt's outcome. Circuits are created lazily per endpoint id, kept across
 * `router.reload` for ids that stay, dropped for ids that leave.
 *
 * Only failures the core's classification blames on the endpoint count (5xx, timeouts, network errors; a stream
 * breaking mid-way with `countStreamFailures`). A client's 4xx never counts, nor does a 429 (the rate limiter's
 * business) or a 401 (the router retires the key). Once open, a circuit lets exactly one probe request through after
 * `halfOpenAfterMs`; other requests pick another endpoint meanwhile. The probe's success closes it, its failure
 * opens it again (for longer with `halfOpenBackoff`).
 *
 * @example
 * import { createRouter } from '@lb/core';
 * import { attachBreaker } from '@lb/breaker';
 *
 * const router = createRouter({ endpoints });
 * const breaker = attachBreaker(router, { threshold: 5, halfOpenAfterMs: 60_000 });
 * breaker.on('state', (e) => console.warn(`${e.endpointId} ${e.from} -> ${e.to}: ${e.reason}`));
 * router.snapshot().endpoints[0].guards.breaker; // { state: 'closed', failures: 0, … }
 */
export function attachBreaker(router: Router, options: BreakerOptions = {}): BreakerHandle {
  return new Breaker(router, options);
}
