/**
 * An endpoint's budgets: its token buckets (requests per second with burst, per minute, tokens per minute) and the
 * upstream's view from its `x-ratelimit-*` headers, built from its `limits` and rebuilt when a reload replaces the
 * endpoint; the level of a bucket now; and each replica's share of a budget when a store is shared.
 */
import { ConfigError, type Endpoint, type Veto } from '@lb/core';
import { type BucketCell, type BucketSpec, refill } from '../store.js';
import type { LimiterContext } from './context.js';
import type { EndpointLimits } from './types.js';

export interface UpstreamView {
  remainingRequests: number | undefined;
  limitRequests: number | undefined;
  requestsResetAt: number;
  remainingTokens: number | undefined;
  limitTokens: number | undefined;
  tokensResetAt: number;
}

export interface EndpointState {
  endpoint: Endpoint;
  limits: EndpointLimits;
  rps: Budget | undefined;
  rpm: Budget | undefined;
  tpm: Budget | undefined;
  cooldownKey: string;
  /** Every store key of the endpoint (whichever budgets it has now), for `reset` and removal. */
  keys: readonly string[];
  view: UpstreamView;
}

/** One of an endpoint's token buckets. */
export interface Budget {
  /** The shared budget's shape (what the store is told). */
  readonly spec: BucketSpec;
  /**
   * The shape this replica decides on: `spec` alone; with a store shared by N replicas, the per-second budget (burst
   * and rate) split N ways, and while the store is degraded every budget split N ways.
   */
  local: BucketSpec;
  readonly kind: 'rps' | 'rpm' | 'tpm';
  readonly key: string;
  /** The veto's reason when it is spent. */
  readonly reason: string;
  /** The store's live state of the bucket (stores with `cell`): a pick reads its level without a lookup. */
  cell: BucketCell | undefined;
}

export function stateOf(k: LimiterContext, endpoint: Endpoint): EndpointState {
  const hit = k.slot.get(endpoint);
  if (hit !== undefined) return hit;
  const s = k.states.get(endpoint.id);
  if (s !== undefined && s.endpoint === endpoint) {
    k.slot.set(endpoint, s);
    return s;
  }
  // New endpoint, or a reload replaced it: derive the specs again (keeping bucket levels and the header view).
  const fresh = buildState(k, endpoint, s?.view);
  k.states.set(endpoint.id, fresh);
  k.slot.set(endpoint, fresh);
  return fresh;
}

export function buildState(
  k: LimiterContext,
  endpoint: Endpoint,
  view: UpstreamView | undefined,
): EndpointState {
  const raw = k.limits(endpoint) ?? {};
  const bad: (keyof EndpointLimits)[] = [];
  const where = `endpoint ${JSON.stringify(endpoint.id)} limits`;
  for (const name of ['rps', 'rpm', 'tpm', 'burst'] as const) {
    const v = raw[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)) {
      const msg = `attachRateLimit: ${where}.${name} must be a number > 0, received ${JSON.stringify(v)}`;
      // At attach time a bad limit is an error; an endpoint reloaded later with one runs without that limit.
      if (k.strict) throw new ConfigError(msg);
      bad.push(name);
    }
  }
  const limits: EndpointLimits = { ...raw };
  for (const name of bad) delete limits[name];
  const base = `${k.prefix}${endpoint.id}:`;
  const budget = (kind: Budget['kind'], capacity: number, perMs: number, reason: string): Budget => {
    const spec = { capacity, refillPerMs: perMs };
    const key = base + kind;
    const local = localSpec(k, kind, spec);
    return { spec, local, kind, key, reason, cell: k.store.cell?.(key, local) };
  };
  const { rps, rpm, tpm, burst } = limits;
  return {
    endpoint,
    limits,
    rps:
      rps === undefined
        ? undefined
        : budget(
            'rps',
            Math.max(1, burst ?? rps),
            rps / 1000,
            `over ${rps} requests/s (burst ${Math.max(1, burst ?? rps)})`,
          ),
    rpm:
      rpm === undefined
        ? undefined
        : budget('rpm', Math.max(1, rpm), rpm / 60_000, `over ${rpm} requests/min`),
    tpm: tpm === undefined ? undefined : budget('tpm', tpm, tpm / 60_000, `over ${tpm} tokens/min`),
    cooldownKey: `${base}cooldown`,
    keys: [`${base}rps`, `${base}rpm`, `${base}tpm`, `${base}cooldown`],
    view: view ?? {
      remainingRequests: undefined,
      limitRequests: undefined,
      requestsResetAt: 0,
      remainingTokens: undefined,
      limitTokens: undefined,
      tokensResetAt: 0,
    },
  };
}

export function forget(k: LimiterContext, id: string): void {
  const s = k.states.get(id);
  if (s === undefined) return;
  k.states.delete(id);
  k.slot.set(s.endpoint, undefined);
  for (const key of s.keys) k.store.delete(key);
}

/** Tokens in a bucket at `now`: from the store's cell when it gives one (no lookup), else `peek`. */
export function level(k: LimiterContext, b: Budget, now: number): number {
  let c = b.cell;
  if (c === undefined) return k.store.peek(b.key, b.local, now);
  if (c.dead) c = b.cell = k.store.cell?.(b.key, b.local) as BucketCell;
  return refill(c.tokens, c.at, b.local, now);
}

/** The veto of a bucket holding fewer than `need` tokens at `now`: until it holds them. */
export function spent(k: LimiterContext, b: Budget, need: number, now: number): Veto {
  const t = level(k, b, now);
  return { reason: b.reason, until: now + Math.ceil((need - t) / b.local.refillPerMs), rateLimited: true };
}

/**
 * The shape a replica decides a budget on. Alone (or on an in-memory store): the budget itself. With a store shared
 * by N replicas, the per-second budget is split N ways, burst and rate: the N shares add up to the shared bucket, so
 * N replicas that start together send the burst once, not N times, and none spends what another refilled. The
 * shared level moves each share (down when others spent, up to what the others' shares leave free when they did
 * not), so a replica with all the traffic still gets the whole rate. The minute budgets stay whole (the shared
 * level corrects each replica). While the store is degraded, each replica keeps to its share of every budget.
 */
export function localSpec(k: LimiterContext, kind: Budget['kind'], spec: BucketSpec): BucketSpec {
  const store = k.store;
  const n = store.replicas ?? 1;
  if (n <= 1) return spec;
  if (store.degraded !== true && kind !== 'rps') return spec;
  return { capacity: Math.max(1, spec.capacity / n), refillPerMs: spec.refillPerMs / n };
}

/** The store's state or replica count changed: every budget takes its new local shape. */
export function reshare(k: LimiterContext): void {
  const now = k.now();
  for (const s of k.states.values()) {
    for (const b of [s.rps, s.rpm, s.tpm]) {
      if (b === undefined) continue;
      b.local = localSpec(k, b.kind, b.spec);
      k.store.clamp?.(b.key, b.local, now);
    }
  }
}
