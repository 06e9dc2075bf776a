/**
 * One endpoint's circuit: created lazily, backed by a cockatiel policy (swapped when hydrated or reset), its
 * transitions turned into the breaker's own view (closed, open, half-open, isolated) with a reason, published on
 * the router's bus and to `on('state')` listeners; and what a passing out-of-band probe or a lost probe does.
 */
import type { Veto } from '@lb/core';
import { CountedFailure, halfOpenBackoff } from '../internal/backoff.js';
import {
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  type IDisposable,
  SamplingBreaker,
} from '../internal/cockatiel.js';
import { CountingBreaker } from '../internal/counting-breaker.js';
import type { BreakerContext } from './context.js';
import { noop, type Pending } from './outcomes.js';
import { share } from './peers.js';
import type { BreakerSnapshot, BreakerState, BreakerStateChange } from './types.js';

export type View =
  | { readonly state: 'closed'; readonly since: number }
  | {
      readonly state: 'open';
      readonly since: number;
      readonly halfOpenAt: number;
      readonly veto: Veto;
    }
  | { readonly state: 'half-open'; readonly since: number }
  | { readonly state: 'isolated'; readonly since: number; readonly veto: Veto };

export interface Circuit {
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

const TO_NAME: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

export function circuitFor(k: BreakerContext, id: string): Circuit {
  let c = k.circuits.get(id);
  if (c === undefined) {
    const now = k.now();
    c = {
      id,
      policy: undefined as unknown as CircuitBreakerPolicy,
      counter: newCounter(k),
      subs: [],
      view: { state: 'closed', since: now },
      reason: undefined,
      override: undefined,
      nextOpenMs: k.o.halfOpenAfterMs,
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
    replace(k, c, undefined);
    k.circuits.set(id, c);
  }
  return c;
}

export function newCounter(k: BreakerContext): CountingBreaker {
  const o = k.o;
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
export function replace(k: BreakerContext, c: Circuit, initialState: unknown): void {
  for (const s of c.subs) s.dispose();
  // Attempts started on the old policy do not count into the new one.
  c.direct.length = 0;
  const o = k.o;
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
      if (c.policy === policy) transition(k, c, s);
    }),
  ];
}

export function openView(c: Circuit, now: number, reason: string, halfOpenAt = now + c.nextOpenMs): View {
  return {
    state: 'open',
    since: now,
    halfOpenAt,
    veto: Object.freeze({ reason: `open: ${reason}`, until: halfOpenAt }),
  };
}

export function transition(k: BreakerContext, c: Circuit, s: CircuitState): void {
  c.heldFor = undefined;
  const now = k.now();
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
          : k.o.shouldTrip
            ? `shouldTrip after ${n.consecutiveFailures} consecutive / ${n.totalFailures} of ${n.requests} failures${last}`
            : k.o.policy === 'sampling'
              ? `failure rate above ${k.o.sampling.threshold} (${n.totalFailures} of ${n.requests} failed)${last}`
              : `${n.consecutiveFailures} consecutive failures${last}`);
      c.opens++;
      c.override = undefined;
      view = openView(c, now, reason);
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
  setView(k, c, view, reason);
  if (to === 'open' || to === 'closed') {
    // Settled: share what this replica found out itself (a probe failed or passed, failures opened it).
    if (!c.quiet && from !== 'isolated' && view.state === 'open')
      share(k, c.id, 'open', reason, view.halfOpenAt - now);
    else if (!c.quiet && from === 'half-open') share(k, c.id, 'closed', reason);
    c.quiet = false;
  }
}

export function setView(k: BreakerContext, c: Circuit, view: View, why: string): void {
  const from = c.view.state;
  c.view = view;
  if (view.state !== 'half-open') c.probe = undefined;
  c.reason = why;
  if (from === view.state) return;
  k.router.publish('guard:state', {
    kind: 'circuit',
    failures: c.counter.counts.consecutiveFailures,
    guard: k.name,
    endpointId: c.id,
    from,
    to: view.state,
    reason: why,
    until: view.state === 'open' ? view.halfOpenAt : undefined,
  });
  if (k.listeners.size === 0) return;
  const change: BreakerStateChange = {
    endpointId: c.id,
    from,
    to: view.state,
    reason: why,
    at: view.since,
    until: view.state === 'open' ? view.halfOpenAt : undefined,
    failures: c.counter.counts.consecutiveFailures,
  };
  for (const l of k.listeners) {
    try {
      l(change);
    } catch {
      // A throwing listener must not break routing.
    }
  }
}

export function dropCircuit(k: BreakerContext, id: string): void {
  const c = k.circuits.get(id);
  if (c === undefined) return;
  for (const s of c.subs) s.dispose();
  k.circuits.delete(id);
}

export function describeCircuit(k: BreakerContext, id: string): BreakerSnapshot {
  const c = k.circuits.get(id);
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

/** An out-of-band probe passed on an open circuit: half-open, then closed, through cockatiel's own transitions. */
export function probePassed(k: BreakerContext, c: Circuit, why: string): boolean {
  if (c.view.state !== 'open') return false;
  if (k.now() < c.view.halfOpenAt) {
    // Hydrate cockatiel with the open period already over, so the probe runs through its own transitions.
    const snap = c.policy.toJSON() as { ownState: { value: CircuitState; openedAt: number } };
    snap.ownState.openedAt = 0;
    replace(k, c, snap);
  }
  c.override = why;
  c.policy.execute(() => Promise.resolve()).catch(noop);
  return (c.view as View).state === 'half-open';
}

/** A half-open probe proved nothing (its caller aborted, it got lost): open again, with the next request probing. */
export function rearm(k: BreakerContext, c: Circuit, why: string): void {
  if (c.view.state !== 'half-open') return;
  // cockatiel serialises a half-open circuit as open since epoch 0: hydrating it gives an open circuit, due now.
  replace(k, c, c.policy.toJSON());
  const now = k.now();
  setView(k, c, openView(c, now, why, now), why);
}
