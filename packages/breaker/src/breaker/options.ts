/**
 * The breaker's options: what `attachBreaker` accepts (documented, with defaults and env vars), and their
 * resolution into the checked, defaulted form the other parts read.
 */
import { ConfigError } from '@lb/core';
import type { BreakerCounts } from '../internal/counting-breaker.js';
import { bool, defaultEnv, type Env, envNumber, fn, num, oneOf } from '../internal/options.js';
import type { BreakerPeers } from './peers.js';

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
  /** How long a circuit stays open before one probe request may go through, ms. Default 60000. Env: `CIRCUIT_BREAKER_TIMEOUT` (seconds, or a duration such as `1m30s`). */
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

export interface Resolved {
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

export function resolveOptions(o: BreakerOptions): Resolved {
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
