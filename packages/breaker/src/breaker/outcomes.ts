/**
 * Outcomes: how each attempt's result reaches its circuit. The router's bus reports `attempt:success`,
 * `attempt:failure` and `attempt:end` (a held stream ending); an attempt counted inside a cockatiel `execute`
 * (a probe, or any attempt while the circuit is not plainly closed) settles its pending promise, a direct one (see
 * `Circuit.direct`) is counted straight into the circuit's breaker.
 */
import { CountedFailure, NeutralOutcome } from '../internal/backoff.js';
import { type CircuitBreakerPolicy, CircuitState } from '../internal/cockatiel.js';
import { type Circuit, rearm } from './circuit.js';
import type { BreakerContext } from './context.js';

/** One attempt counted inside a cockatiel `execute`, settled when its outcome arrives on the bus. */
export interface Pending {
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

export const NEUTRAL = new NeutralOutcome();
export const noop = () => {};
const COUNTING_KINDS: ReadonlySet<string> = new Set(['server', 'network', 'timeout']);

export function takePending(k: BreakerContext, requestId: string, endpointId: string): Pending | undefined {
  let p = k.pending.get(requestId);
  let prev: Pending | undefined;
  while (p !== undefined && p.endpointId !== endpointId) {
    prev = p;
    p = p.next;
  }
  if (p === undefined) return undefined;
  if (prev) prev.next = p.next;
  else if (p.next) k.pending.set(requestId, p.next);
  else k.pending.delete(requestId);
  p.next = undefined;
  return p;
}

export function onSuccess(
  k: BreakerContext,
  e: { requestId: string; endpointId: string; held: boolean },
): void {
  // A held attempt (a stream the router still counts in flight) is judged when its stream ends (`attempt:end`).
  const held = k.o.countStreamFailures && e.held;
  if (held) {
    // A direct attempt stays listed until its stream ends (`attempt:end`).
    const p = k.pending.size ? findPending(k, e.requestId, e.endpointId) : undefined;
    if (p) p.streaming = true;
    return;
  }
  countOutcome(k, e.requestId, e.endpointId, undefined);
}

/** Settles this request's attempt on the endpoint, counted through cockatiel or directly (see `Circuit.direct`). */
export function countOutcome(
  k: BreakerContext,
  requestId: string,
  endpointId: string,
  outcome: Error | undefined,
): void {
  const p = k.pending.size ? takePending(k, requestId, endpointId) : undefined;
  if (p !== undefined) settle(p, outcome);
  else countDirect(k, requestId, endpointId, outcome);
}

/**
 * Counts the outcome of a direct attempt (see `Circuit.direct`), taking it off its circuit's list, if the circuit
 * listed it and is still closed.
 */
export function countDirect(
  k: BreakerContext,
  requestId: string,
  endpointId: string,
  outcome: Error | undefined,
): void {
  const c = k.circuits.get(endpointId);
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

export function findPending(k: BreakerContext, requestId: string, endpointId: string): Pending | undefined {
  let p = k.pending.get(requestId);
  while (p !== undefined && p.endpointId !== endpointId) p = p.next;
  return p;
}

export function onFailure(
  k: BreakerContext,
  e: {
    requestId: string;
    endpointId: string;
    kind: string;
    countsForBreaker: boolean;
    message: string;
    retryAfterMs: number | undefined;
  },
): void {
  const outcome = e.countsForBreaker ? new CountedFailure(e.message, e.retryAfterMs) : NEUTRAL;
  const p = k.pending.size ? takePending(k, e.requestId, e.endpointId) : undefined;
  if (p === undefined) countDirect(k, e.requestId, e.endpointId, outcome);
  else if (!e.countsForBreaker && e.kind === 'aborted' && p.probe && p.policy === p.circuit.policy) {
    rearm(k, p.circuit, 'probe aborted by its caller; the next request probes');
    p.reject(NEUTRAL);
  } else settle(p, outcome);
}

export function onEnd(
  k: BreakerContext,
  e: {
    requestId: string;
    endpointId: string;
    ok: boolean;
    kind: string;
    message: string | undefined;
  },
): void {
  const outcome =
    !e.ok && COUNTING_KINDS.has(e.kind)
      ? new CountedFailure(e.message ?? `stream broke (${e.kind})`, undefined)
      : undefined;
  countOutcome(k, e.requestId, e.endpointId, outcome);
}

export function settle(p: Pending, outcome: Error | undefined): void {
  if (outcome === undefined) p.resolve();
  else {
    if (outcome instanceof CountedFailure && p.policy === p.circuit.policy)
      p.circuit.lastFailure = outcome.message;
    p.reject(outcome);
  }
}
