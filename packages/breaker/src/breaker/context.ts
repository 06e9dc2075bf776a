/**
 * What one attached breaker holds, shared by its parts (guard, outcomes, circuits, peers): the router, the resolved
 * options, every circuit by endpoint id, the attempts awaiting their outcome, the state listeners.
 */
import type { Router } from '@lb/core';
import type { Circuit } from './circuit.js';
import type { Resolved } from './options.js';
import type { Pending } from './outcomes.js';
import type { BreakerStateChange } from './types.js';

export class BreakerContext {
  readonly name: string;
  readonly now: () => number;
  readonly circuits = new Map<string, Circuit>();
  /** Attempts counted inside a cockatiel `execute`, by request id (a chain when one request has several). */
  readonly pending = new Map<string, Pending>();
  readonly listeners = new Set<(c: BreakerStateChange) => void>();
  disposed = false;
  /** Epoch ms before which no all-open probe starts (see `probeWhenAllOpen`). */
  nextRescueAt = 0;

  constructor(
    readonly router: Router,
    readonly o: Resolved,
  ) {
    this.name = o.name;
    this.now = o.now;
  }
}
