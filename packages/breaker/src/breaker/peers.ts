/**
 * Peers: sharing circuit changes between replicas over a publish/subscribe channel — the message format, what this
 * replica announces (opened, closed, probing, hello), and what it does with another replica's word.
 */
import { CircuitState } from '../internal/cockatiel.js';
import { circuitFor, openView, probePassed, replace, setView } from './circuit.js';
import type { BreakerContext } from './context.js';

/**
 * A channel between replicas for {@link BreakerOptions.peers}: messages are short strings the breaker writes and
 * reads itself (a replica ignores its own); the channel only carries them to every other subscriber.
 *
 * @example
 * // ioredis: one connection publishes, a duplicate subscribes
 * const peers = {
 *   publish: (m) => void redis.publish('lb:breaker', m).catch(() => {}),
 *   subscribe: (fn) => { const sub = redis.duplicate(); sub.subscribe('lb:breaker'); sub.on('message', (_c, m) => fn(m)); return () => sub.disconnect(); },
 * };
 */
export interface BreakerPeers {
  /** Sends one message to the other replicas. Must not throw (a lost message only delays the others). */
  publish(message: string): void;
  /**
   * Calls `onMessage` with every message published by any replica; returns the unsubscribe. Calls `onSubscribed`
   * (when given) each time the subscription is live and `publish` can be heard (at start, after a reconnect): the
   * replica then asks the others for the circuits they hold open, so one that starts during an outage learns of it.
   */
  subscribe(onMessage: (message: string) => void, onSubscribed?: () => void): () => void;
}

/** A shared change, as sent between replicas. */
export interface PeerMessage {
  v: 1;
  /** Replica that sent it. */
  from: string;
  endpointId: string;
  /**
   * `hello`: a replica (re)joined; the others answer with the circuits they opened themselves (`endpointId` '').
   * `probing`: every circuit was open and the sender probes this one early; wait `forMs` for its word.
   */
  state: 'open' | 'closed' | 'hello' | 'probing';
  /** Open: how long the sender's circuit stays open from now, ms (a duration: clocks of replicas differ). */
  forMs?: number;
  reason: string;
}

/** The longest remote open period taken on, ms: a day (a message is only as trustworthy as its sender). */
const MAX_PEER_OPEN_MS = 86_400_000;

/** A peer's message, or undefined when it is not one (another version, garbage on the channel). */
function readPeerMessage(raw: unknown): PeerMessage | undefined {
  if (typeof raw !== 'string' || raw.length > 4096) return undefined;
  let m: Partial<PeerMessage>;
  try {
    m = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (
    m === null ||
    typeof m !== 'object' ||
    m.v !== 1 ||
    typeof m.from !== 'string' ||
    typeof m.endpointId !== 'string' ||
    typeof m.reason !== 'string' ||
    (m.state !== 'closed' &&
      m.state !== 'hello' &&
      ((m.state !== 'open' && m.state !== 'probing') || typeof m.forMs !== 'number' || !(m.forMs > 0)))
  )
    return undefined;
  return m as PeerMessage;
}

export function share(
  k: BreakerContext,
  endpointId: string,
  state: PeerMessage['state'],
  reason: string,
  forMs?: number,
): void {
  const peers = k.o.peers;
  if (peers === undefined) return;
  const m: PeerMessage = { v: 1, from: k.o.replicaId, endpointId, state, forMs, reason };
  try {
    peers.publish(JSON.stringify(m));
  } catch {
    // A lost message only delays the other replicas: each still judges the endpoint by its own traffic.
  }
}

export function onPeer(k: BreakerContext, raw: unknown): void {
  const m = readPeerMessage(raw);
  if (m === undefined || m.from === k.o.replicaId || k.disposed) return;
  if (m.state === 'hello') {
    // A replica (re)joined: tell it of the circuits this one opened on what it saw (not those held on a peer's
    // word: their opener answers for them).
    const now = k.now();
    for (const c of k.circuits.values()) {
      const v = c.view;
      if (v.state === 'open' && c.heldFor === undefined && v.halfOpenAt > now)
        share(k, c.id, 'open', c.reason ?? 'open', v.halfOpenAt - now);
    }
    return;
  }
  if (k.router.getEndpoint(m.endpointId) === undefined) return;
  if (m.state === 'probing') {
    // Another replica probes this endpoint because every circuit was open there: wait for its word (its `open` or
    // `closed`), at most `forMs`, and start no all-open probe of this replica's own meanwhile.
    const now = k.now();
    const until = now + Math.min(m.forMs!, MAX_PEER_OPEN_MS);
    circuitFor(k, m.endpointId).peerProbeUntil = until;
    k.nextRescueAt = Math.max(k.nextRescueAt, now + k.o.allOpenProbeIntervalMs);
    return;
  }
  const known = k.circuits.get(m.endpointId);
  if (known !== undefined) known.peerProbeUntil = 0;
  if (m.state === 'open') {
    // A closed circuit takes a peer's word, and one held on a peer's word takes its next one (its probe failed):
    // one that is open, probing or isolated on what this replica saw itself knows better.
    const c = circuitFor(k, m.endpointId);
    const v = c.view.state;
    if (v !== 'closed' && !(v === 'open' && c.heldFor !== undefined)) return;
    // Open until the sender's probe is due, and a grace for its outcome to arrive; then this replica probes.
    const forMs = Math.min(m.forMs!, MAX_PEER_OPEN_MS) + k.o.peerGraceMs;
    // cockatiel hydrated open, due for a probe then.
    const first = Math.min(k.o.maxMs, k.o.halfOpenAfterMs);
    const { breakerState } = c.policy.toJSON() as { breakerState: unknown };
    replace(k, c, {
      ownState: { value: CircuitState.Open, openedAt: Date.now() + forMs - first, attemptNo: 1 },
      breakerState,
    });
    const now = k.now();
    const why = `opened on replica ${m.from}: ${m.reason}`;
    setView(k, c, openView(c, now, why, now + forMs), why);
    c.heldFor = m.from;
    return;
  }
  // A probe passed on another replica: an open circuit here closes through its own probe transitions.
  const c = k.circuits.get(m.endpointId);
  if (c === undefined || c.view.state !== 'open') return;
  c.quiet = true;
  probePassed(k, c, `probe passed on replica ${m.from}`);
}
