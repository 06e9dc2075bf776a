/**
 * What one attached limiter holds, shared by its parts (guard, budgets, cooldowns, headers, charges, queue,
 * snapshot): the router, the store's view, the resolved options, every endpoint's state and the open charges.
 */
import type { Endpoint, Guard, RouteRequest, Router } from '@lb/core';
import { EndpointSlot } from '@lb/core/internal';
import type { ViewStore } from '../internal/local-view.js';
import type { EndpointState } from './budgets.js';
import type { Charge } from './charges.js';
import type { RateLimitPeers } from './cooldowns.js';
import type { EndpointLimits } from './types.js';

export class LimiterContext {
  /** The limiter's guard (set once attached): the queue and the snapshot ask its `admit`. */
  guard!: Guard;
  readonly states = new Map<string, EndpointState>();
  /** The same states on the endpoint objects: two array reads on the hot path instead of the id map's lookup. */
  readonly slot = new EndpointSlot<EndpointState>();
  /** The tokens charged per request, until its usage or failure corrects them. */
  readonly charges = new Map<string, Charge>();
  disposed = false;
  /** Requests waiting for budget in the queue now. */
  waiting = 0;
  /** At attach time a bad limit throws; later (a reload) the endpoint runs without it. */
  strict = true;

  constructor(
    readonly name: string,
    readonly router: Router,
    readonly store: ViewStore,
    readonly peers: RateLimitPeers | undefined,
    readonly replicaId: string,
    readonly limits: (endpoint: Endpoint) => EndpointLimits | undefined,
    readonly estimate: (request: RouteRequest) => number,
    readonly headers: boolean,
    readonly reserveRequests: number,
    readonly reserveTokens: number,
    readonly prefix: string,
    readonly cooldownMs: number,
    readonly maxCooldownMs: number,
    readonly maxQueue: number,
    readonly now: () => number,
  ) {}
}
