import type { StoreHealth, StoreLatency, StoreState, StoreStateChange, StoreStatus } from '../store.js';

/** Upper bounds of the round-trip histogram, seconds. */
const BOUNDS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
]);

/**
 * A remote store's health, changed in one place: a failure (error, timeout, away) degrades it, an answer within the
 * command timeout brings it back. Each transition is reported once to the listeners, typed. Also keeps the replica
 * count (heartbeats, or fixed by config) and the round-trip histogram.
 */
export class StoreMonitor implements StoreHealth {
  #state: StoreState = 'up';
  #since = Date.now();
  #reason = 'starting';
  #replicas: number;
  readonly #fixed: boolean;
  #errors = 0;
  readonly #timeoutMs: number;
  readonly #counts = new Array<number>(BOUNDS.length).fill(0);
  #sum = 0;
  #count = 0;
  readonly #listeners = new Set<(change: StoreStateChange) => void>();
  readonly #counters = new Set<(replicas: number) => void>();

  constructor(timeoutMs: number, replicas: number | undefined) {
    this.#timeoutMs = timeoutMs;
    this.#fixed = replicas !== undefined;
    this.#replicas = replicas ?? 1;
  }

  get state(): StoreState {
    return this.#state;
  }

  get replicas(): number {
    return this.#replicas;
  }

  /** Commands answered so far. */
  get answers(): number {
    return this.#count;
  }

  onState(listener: (change: StoreStateChange) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  onReplicas(listener: (replicas: number) => void): () => void {
    this.#counters.add(listener);
    return () => {
      this.#counters.delete(listener);
    };
  }

  status(): StoreStatus {
    const latency: StoreLatency = {
      bounds: BOUNDS,
      counts: [...this.#counts],
      sum: this.#sum,
      count: this.#count,
    };
    return {
      state: this.#state,
      since: this.#since,
      reason: this.#reason,
      replicas: this.#replicas,
      share: 1 / this.#replicas,
      errors: this.#errors,
      commandTimeoutMs: this.#timeoutMs,
      latency,
    };
  }

  /** A command answered after `ms`: recorded; within the timeout it shows the store is up. */
  answered(ms: number): void {
    const s = ms / 1000;
    let i = 0;
    while (i < BOUNDS.length && s > BOUNDS[i]) i++;
    if (i < BOUNDS.length) this.#counts[i]++;
    this.#sum += s;
    this.#count++;
    if (ms <= this.#timeoutMs) this.#set('up', 'answered again');
  }

  /** A command failed (an error, a timeout, Redis away). */
  failed(reason: string): void {
    this.#errors++;
    this.#set('degraded', reason);
  }

  /** The heartbeat counted `n` live replicas (ignored when the count is fixed by config). */
  counted(n: number): void {
    if (this.#fixed || !Number.isInteger(n) || n < 1 || n === this.#replicas) return;
    this.#replicas = n;
    for (const l of this.#counters) {
      try {
        l(n);
      } catch {
        // A throwing listener must not break the store.
      }
    }
  }

  #set(to: StoreState, reason: string): void {
    const from = this.#state;
    if (from === to) return;
    const at = Date.now();
    this.#state = to;
    this.#since = at;
    this.#reason = reason;
    const change: StoreStateChange = {
      from,
      to,
      reason,
      replicas: this.#replicas,
      share: 1 / this.#replicas,
      at,
    };
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch {
        // A throwing listener must not break the store.
      }
    }
  }
}
