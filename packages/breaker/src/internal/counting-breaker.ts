import { CircuitState, type IBreaker } from './cockatiel.js';

/**
 * Outcome counts of one circuit, as gobreaker's `Counts`: cleared when the circuit closes or goes half-open (a new
 * "generation"), kept while it is open so a health page can show what opened it.
 */
export interface BreakerCounts {
  /** Outcomes counted in this generation. */
  requests: number;
  totalSuccesses: number;
  totalFailures: number;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
}

export function newCounts(): BreakerCounts {
  return {
    requests: 0,
    totalSuccesses: 0,
    totalFailures: 0,
    consecutiveSuccesses: 0,
    consecutiveFailures: 0,
  };
}

/**
 * A cockatiel `IBreaker` that keeps gobreaker-style counts around cockatiel's own breaker (consecutive or sampling)
 * and, when given `shouldTrip`, lets it decide instead (gobreaker's `ReadyToTrip`).
 */
export class CountingBreaker implements IBreaker {
  counts: BreakerCounts = newCounts();

  constructor(
    private readonly inner: IBreaker,
    private readonly shouldTrip: ((counts: Readonly<BreakerCounts>) => boolean) | undefined,
  ) {}

  get state(): unknown {
    return { inner: this.inner.state, counts: { ...this.counts } };
  }

  set state(value: unknown) {
    const v = value as { inner?: unknown; counts?: BreakerCounts } | undefined;
    if (!v) return;
    this.inner.state = v.inner;
    if (v.counts) this.counts = { ...v.counts };
  }

  success(state: CircuitState): void {
    const c = this.counts;
    c.requests++;
    c.totalSuccesses++;
    c.consecutiveSuccesses++;
    c.consecutiveFailures = 0;
    this.inner.success(state);
  }

  failure(state: CircuitState): boolean {
    const c = this.counts;
    c.requests++;
    c.totalFailures++;
    c.consecutiveFailures++;
    c.consecutiveSuccesses = 0;
    const trip = this.inner.failure(state);
    if (this.shouldTrip !== undefined && state === CircuitState.Closed) return this.shouldTrip(c) === true;
    return trip;
  }

  /** Starts a new generation of counts. */
  clear(): void {
    this.counts = newCounts();
  }
}
