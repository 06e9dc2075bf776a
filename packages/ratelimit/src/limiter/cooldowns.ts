/**
 * Cooldowns: an endpoint that gets nothing until a time (an upstream 429, or its headers said the budget is spent),
 * kept in the store, announced on the router's bus (`guard:state`, kind `cooldown`), and shared with the other
 * replicas over `peers` so they stop at once.
 */
import type { Cooldown } from '../store.js';
import type { EndpointState } from './budgets.js';
import type { LimiterContext } from './context.js';

/**
 * A publish/subscribe channel between replicas (the same shape as `@lb/breaker`'s `BreakerPeers`): the limiter tells
 * the others of the cooldowns an upstream 429 (or its rate-limit headers) started, so they stop at once instead of
 * after one more request.
 */
export interface RateLimitPeers {
  /** Sends a message to every replica (this one included: its own are ignored). */
  publish(message: string): void;
  /** Calls `onMessage` with every message; returns the unsubscribe. */
  subscribe(onMessage: (message: string) => void, onSubscribed?: () => void): () => void;
}

/** A cooldown as it travels between replicas. */
interface CooldownMessage {
  v: 1;
  from: string;
  key: string;
  until: number;
  reason: string;
}

export function cool(k: LimiterContext, s: EndpointState, until: number, reason: string): void {
  const now = k.now();
  setCooldown(k, s, { until: Math.min(until, now + k.maxCooldownMs), reason });
}

/**
 * A cooldown begins (or is adopted from a peer): published on the router's bus as a typed `guard:state` change
 * (`ready` → `cooling`) when the endpoint was not cooling already. It ends at `until` without another event.
 */
export function announce(k: LimiterContext, s: EndpointState, cooldown: Cooldown): void {
  if (k.store.getCooldown(s.cooldownKey, k.now()) !== undefined) return;
  k.router.publish('guard:state', {
    kind: 'cooldown',
    guard: k.name,
    endpointId: s.endpoint.id,
    from: 'ready',
    to: 'cooling',
    reason: cooldown.reason,
    until: cooldown.until,
  });
}

/** Stores a cooldown and tells the other replicas at once (`peers`). */
export function setCooldown(k: LimiterContext, s: EndpointState, cooldown: Cooldown): void {
  const key = s.cooldownKey;
  announce(k, s, cooldown);
  k.store.setCooldown(key, cooldown);
  const peers = k.peers;
  if (peers === undefined) return;
  const m: CooldownMessage = {
    v: 1,
    from: k.replicaId,
    key,
    until: cooldown.until,
    reason: cooldown.reason,
  };
  try {
    peers.publish(JSON.stringify(m));
  } catch {
    // A lost message only delays the others: they still read the cooldown from the store after a request.
  }
}

/** A cooldown another replica started: adopted here at once, for an endpoint this limiter knows. */
export function onPeer(k: LimiterContext, raw: unknown): void {
  if (k.disposed || typeof raw !== 'string') return;
  let m: Partial<CooldownMessage>;
  try {
    m = JSON.parse(raw) as Partial<CooldownMessage>;
  } catch {
    return;
  }
  if (m?.v !== 1 || m.from === k.replicaId || typeof m.key !== 'string') return;
  if (typeof m.until !== 'number' || !Number.isFinite(m.until) || typeof m.reason !== 'string') return;
  for (const s of k.states.values()) {
    if (s.cooldownKey !== m.key) continue;
    const until = Math.min(m.until, k.now() + k.maxCooldownMs);
    const cd = { until, reason: m.reason.slice(0, 200) };
    announce(k, s, cd);
    if (k.store.adopt) k.store.adopt(m.key, cd);
    else k.store.setCooldown(m.key, cd);
    return;
  }
}
