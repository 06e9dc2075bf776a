/**
 * The breaker: the guard the router asks at every pick (`admit`, `rescue` when every circuit is open, `acquire` when
 * an attempt starts) and the handle users hold (state, isolate, reset, probes, snapshot, `on('state')`). Its parts:
 * `breaker/options` (options and their defaults), `breaker/circuit` (one endpoint's circuit and its transitions),
 * `breaker/outcomes` (attempts' results reaching their circuits), `breaker/peers` (sharing circuits between
 * replicas), `breaker/types` (the public state, change, snapshot and handle types).
 */
import type { Endpoint, Guard, Router, Veto } from '@lb/core';
import { ConfigError } from '@lb/core';
import {
  type Circuit,
  circuitFor,
  describeCircuit,
  dropCircuit,
  newCounter,
  probePassed,
  rearm,
  replace,
  setView,
} from './breaker/circuit.js';
import { BreakerContext } from './breaker/context.js';
import { type BreakerOptions, resolveOptions } from './breaker/options.js';
import {
  NEUTRAL,
  noop,
  onEnd,
  onFailure,
  onSuccess,
  type Pending,
  settle,
  takePending,
} from './breaker/outcomes.js';
import { onPeer, share } from './breaker/peers.js';
import type { BreakerHandle, BreakerSnapshot, BreakerState, BreakerStateChange } from './breaker/types.js';
import { CircuitState } from './internal/cockatiel.js';

export type { BreakerOptions, HalfOpenBackoffOptions, SamplingOptions } from './breaker/options.js';
export type { BreakerPeers } from './breaker/peers.js';
export type { BreakerHandle, BreakerSnapshot, BreakerState, BreakerStateChange } from './breaker/types.js';
export type { BreakerCounts } from './internal/counting-breaker.js';

const PROBE_VETO: Veto = Object.freeze({ reason: 'half-open: a probe request is in flight' });

class Breaker implements BreakerHandle, Guard {
  readonly name: string;
  /** `admit` reads the breaker's own clock, and only while a circuit is open or probing: a pick needs no clock. */
  readonly usesNow = false;
  /** Opens circuits itself: the router's default outlier ejection steps aside while a breaker is attached. */
  readonly ejects = true;
  readonly #k: BreakerContext;
  /** `#k.circuits`, read directly by `admit` at every pick. */
  readonly #circuits: Map<string, Circuit>;
  #offs: (() => void)[] = [];

  constructor(router: Router, options: BreakerOptions) {
    if (!router || typeof router.addGuard !== 'function' || typeof router.on !== 'function')
      throw new ConfigError(`attachBreaker: expected an @lb/core Router, received ${String(router)}`);
    const o = resolveOptions(options);
    this.name = o.name;
    if (router.guards.some((g) => g.name === this.name))
      throw new ConfigError(
        `attachBreaker: a guard named ${JSON.stringify(this.name)} is already attached; dispose it or pass another name`,
      );
    const k = new BreakerContext(router, o);
    this.#k = k;
    this.#circuits = k.circuits;
    const r = router;
    this.#offs = [
      r.on('attempt:success', (e) => onSuccess(k, e)),
      r.on('attempt:failure', (e) => onFailure(k, e)),
      r.on('attempt:end', (e) => onEnd(k, e)),
      r.on('config:reloaded', (e) => {
        for (const id of e.removed) dropCircuit(k, id);
      }),
      // Enabled by hand: a hand outranks an open circuit.
      r.on('endpoint:override', (e) => {
        if (e.healthy && this.#circuits.has(e.endpointId)) this.reset(e.endpointId);
      }),
    ];
    this.#offs.push(r.addGuard(this));
    const peers = o.peers;
    if (peers !== undefined) {
      const off = peers.subscribe(
        (m) => onPeer(k, m),
        () => share(k, '', 'hello', 'joined'),
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
        const now = this.#k.now();
        if (now >= v.halfOpenAt) return true;
        // The next early probe comes before the open period ends (see `probeWhenAllOpen`): say so, so a refusal
        // when every circuit is open asks the caller back then (Retry-After), not at the end of the open period.
        const at = this.#k.nextRescueAt;
        if (at <= now || at >= v.halfOpenAt || c.openByRetryAfter || !this.#k.o.probeWhenAllOpen)
          return v.veto;
        const rv = c.rescueVeto;
        if (rv?.until !== at || rv.reason !== v.veto.reason)
          c.rescueVeto = Object.freeze({ reason: v.veto.reason, until: at });
        return c.rescueVeto!;
      }
      case 'half-open':
        return this.#k.now() - v.since >= this.#k.o.probeTimeoutMs ? true : PROBE_VETO;
      default:
        return v.veto;
    }
  }

  /**
   * Every candidate was refused: when every one is open on this breaker's word (none closed, none probing, none
   * awaited from another replica), the one open longest may probe now. Pure: `acquire` starts the probe.
   */
  rescue(candidates: readonly Endpoint[]): Endpoint | undefined {
    if (!this.#k.o.probeWhenAllOpen) return undefined;
    const now = this.#k.now();
    if (now < this.#k.nextRescueAt) return undefined;
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
    const c = circuitFor(this.#k, endpoint.id);
    let v = c.view;
    if (v.state === 'half-open' && this.#k.now() - v.since >= this.#k.o.probeTimeoutMs) {
      const lost = c.probe;
      if (lost?.requestId !== undefined) takePending(this.#k, lost.requestId, lost.endpointId);
      rearm(this.#k, c, `probe unsettled after ${this.#k.o.probeTimeoutMs} ms; probing again`);
      lost?.reject(NEUTRAL);
      v = c.view;
    }
    if (v.state === 'half-open' || v.state === 'isolated') return;
    let early = false;
    if (v.state === 'open' && this.#k.now() < v.halfOpenAt) {
      // Only `rescue` lets the router pick an open circuit before its time: every candidate is open.
      const now = this.#k.now();
      if (!this.#k.o.probeWhenAllOpen || now < this.#k.nextRescueAt) return;
      this.#k.nextRescueAt = now + this.#k.o.allOpenProbeIntervalMs;
      // Hydrate cockatiel with the open period over, so the probe runs through its own half-open transitions.
      const snap = c.policy.toJSON() as { ownState: { value: CircuitState; openedAt: number } };
      snap.ownState.openedAt = 0;
      replace(this.#k, c, snap);
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
      if (p.started) share(this.#k, c.id, 'probing', c.reason ?? 'probing', this.#k.o.peerGraceMs || 1);
    }
    // cockatiel refused (its clock says not yet): nothing to count.
    if (!p.started) return;
    if (p.probe) c.probe = p;
    if (requestId !== undefined) {
      // The router names the request: bind the outcome to it at once.
      p.requestId = requestId;
      p.next = this.#k.pending.get(requestId);
      this.#k.pending.set(requestId, p);
    } else {
      // No request to bind the outcome to: do not count it.
      settle(p, NEUTRAL);
    }
  }

  describe(endpoint: Endpoint): BreakerSnapshot {
    return describeCircuit(this.#k, endpoint.id);
  }

  // ------------------------------------------------------------- handle

  state(id: string): BreakerState {
    return this.#circuits.get(id)?.view.state ?? 'closed';
  }

  isolate(id: string, reason?: string): boolean {
    if (this.#k.router.getEndpoint(id) === undefined) return false;
    const c = circuitFor(this.#k, id);
    if (c.view.state === 'isolated') return true;
    c.override = reason ?? 'isolated by hand';
    c.policy.isolate();
    return true;
  }

  reset(id: string): boolean {
    if (this.#k.router.getEndpoint(id) === undefined) return false;
    const c = this.#circuits.get(id);
    if (c === undefined) return true;
    c.counter = newCounter(this.#k);
    c.lastFailure = undefined;
    c.override = undefined;
    c.nextOpenMs = this.#k.o.halfOpenAfterMs;
    c.openByRetryAfter = false;
    c.heldFor = undefined;
    replace(this.#k, c, undefined);
    const from = c.view.state;
    setView(this.#k, c, { state: 'closed', since: this.#k.now() }, 'reset by hand');
    if (from === 'open' || from === 'half-open') share(this.#k, id, 'closed', 'reset by hand');
    return true;
  }

  recordProbe(id: string, ok: boolean): boolean {
    const c = this.#circuits.get(id);
    if (!ok || c === undefined || c.view.state !== 'open') return false;
    return probePassed(this.#k, c, 'health probe passed');
  }

  snapshot(): Record<string, BreakerSnapshot> {
    const out: Record<string, BreakerSnapshot> = {};
    for (const ep of this.#k.router.endpoints) out[ep.id] = describeCircuit(this.#k, ep.id);
    return out;
  }

  on(event: 'state', listener: (change: BreakerStateChange) => void): () => void {
    if (event !== 'state')
      throw new TypeError(`breaker.on: unknown event ${JSON.stringify(event)}; known: 'state'`);
    this.#k.listeners.add(listener);
    return () => {
      this.#k.listeners.delete(listener);
    };
  }

  dispose(): void {
    if (this.#k.disposed) return;
    this.#k.disposed = true;
    for (const off of this.#offs) off();
    this.#offs = [];
    for (const c of this.#circuits.values()) for (const s of c.subs) s.dispose();
    for (let p of this.#k.pending.values()) {
      for (; p !== undefined; p = p.next!) p.reject(NEUTRAL);
    }
    this.#k.pending.clear();
    this.#circuits.clear();
    this.#k.listeners.clear();
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
