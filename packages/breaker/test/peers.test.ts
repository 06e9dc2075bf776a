import { ConfigError, createRouter } from '@lb/core';
import { describe, expect, it, vi } from 'vitest';
import { attachBreaker, type BreakerPeers } from '../src/index.js';
import { bus, fakeTimers, flush, setup } from './setup.js';

/** A replica: the shared test router (endpoints a, b) with a breaker on `peers`. */
const GRACE = 2_000;
const replica = (peers: BreakerPeers, name: string) =>
  setup({ threshold: 2, halfOpenAfterMs: 10_000, peers, replicaId: name, peerGraceMs: GRACE });

fakeTimers();

/** Replicas r1 and r2 on one bus; `a` failed twice on r1, which opened its circuit. */
async function tripped() {
  const { peers, sent } = bus();
  const r1 = replica(peers, 'r1');
  const r2 = replica(peers, 'r2');
  r1.script.a = () => Promise.resolve({ status: 500 });
  await r1.run();
  await r1.run();
  await flush();
  return { peers, sent, r1, r2 };
}

describe('breakers shared between replicas (peers)', () => {
  it('a circuit one replica opens opens on the other, which waits for the opener’s probe: one probe per fleet', async () => {
    const { sent, r1, r2 } = await tripped();
    expect(r1.breaker.state('a')).toBe('open');
    expect(sent.map((m) => JSON.parse(m)).filter((m) => m.state !== 'hello')).toEqual([
      {
        v: 1,
        from: 'r1',
        endpointId: 'a',
        state: 'open',
        forMs: 10_000,
        reason: '2 consecutive failures; last: HTTP 500',
      },
    ]);
    // r2 never saw a failure, and does not send to `a` now: open until r1's probe is due, plus the grace.
    expect(r2.breaker.state('a')).toBe('open');
    expect(r2.changes.map((c) => [c.from, c.to, c.reason])).toEqual([
      ['closed', 'open', 'opened on replica r1: 2 consecutive failures; last: HTTP 500'],
    ]);
    expect(r2.changes[0].until).toBe(r2.changes[0].at + 10_000 + GRACE);
    await r2.run();
    expect(r2.calls).toEqual(['b']);
    expect(r2.router.snapshot().endpoints[0].unavailableReason).toMatch(
      /^breaker: open: opened on replica r1/,
    );

    // r1's period ends: r1 probes with a request of its own (`a` has recovered); r2 still waits, then hears of it.
    await vi.advanceTimersByTimeAsync(10_000);
    await r2.run();
    expect(r2.calls).toEqual(['b', 'b']);
    r1.script.a = () => Promise.resolve({ status: 200 });
    r1.calls.length = 0;
    await r1.run();
    await flush();
    expect(r1.calls).toEqual(['a']);
    expect(r1.breaker.state('a')).toBe('closed');
    expect(JSON.parse(sent.at(-1)!)).toMatchObject({
      from: 'r1',
      state: 'closed',
      reason: 'probe succeeded',
    });
    await flush();
    expect(r2.breaker.state('a')).toBe('closed');
    expect(r2.changes.map((c) => [c.to, c.reason])).toEqual([
      ['open', 'opened on replica r1: 2 consecutive failures; last: HTTP 500'],
      ['half-open', 'probe passed on replica r1'],
      ['closed', 'probe passed on replica r1'],
    ]);
    // r2 closed on r1's word: it never probed, and does not echo the news back.
    expect(sent.filter((m) => JSON.parse(m).from === 'r2' && JSON.parse(m).state !== 'hello')).toHaveLength(
      0,
    );
    r2.calls.length = 0;
    await r2.run();
    expect(r2.calls).toEqual(['a']);
  });

  it("the opener's failed probe holds the others for its next period; with no word, they probe after the grace", async () => {
    const { peers, sent } = bus();
    const r1 = replica(peers, 'r1');
    const r2 = replica(peers, 'r2');
    r1.script.a = () => Promise.resolve({ status: 500 });
    r2.script.a = () => Promise.resolve({ status: 500 });
    await r1.run();
    await r1.run();
    await flush();
    await vi.advanceTimersByTimeAsync(10_000);
    await r1.run(); // r1's probe fails: open again (constant period), and said so
    await flush();
    expect(JSON.parse(sent.at(-1)!)).toMatchObject({ from: 'r1', state: 'open', forMs: 10_000 });
    // Still open on r2 (no new state change), now until r1's next probe is due, plus the grace.
    const held = r2.breaker.snapshot().a;
    expect(held.state).toBe('open');
    expect(held.reason).toMatch(/^opened on replica r1: probe failed/);
    expect(held.halfOpenAt).toBe(Date.now() + 10_000 + GRACE);
    // r1 goes quiet (gone): r2 lets its own probe through once r1's period and the grace are over.
    r1.breaker.dispose();
    await vi.advanceTimersByTimeAsync(10_000 + GRACE - 1);
    r2.calls.length = 0;
    await r2.run();
    expect(r2.calls).toEqual(['b']);
    await vi.advanceTimersByTimeAsync(1);
    await r2.run();
    await flush();
    expect(r2.calls).toEqual(['b', 'a', 'b']);
    expect(r2.breaker.state('a')).toBe('open');
    expect(JSON.parse(sent.at(-1)!)).toMatchObject({ from: 'r2', state: 'open' });
  });

  it("a failed probe opens again everywhere; an open, probing or isolated circuit ignores a peer's open", async () => {
    const { peers, sent } = bus();
    const r1 = replica(peers, 'r1');
    const r2 = replica(peers, 'r2');
    r2.breaker.isolate('a', 'maintenance');
    r1.script.a = () => Promise.resolve({ status: 503 });
    await r1.run();
    await r1.run();
    await flush();
    expect(r2.breaker.state('a')).toBe('isolated');
    await vi.advanceTimersByTimeAsync(10_000);
    r1.calls.length = 0;
    await r1.run();
    await flush();
    expect(r1.calls).toEqual(['a', 'b']);
    expect(r1.breaker.state('a')).toBe('open');
    expect(
      sent
        .map((m) => JSON.parse(m))
        .filter((m) => m.state !== 'hello')
        .map((m) => [m.from, m.state, m.reason.split(';')[0]]),
    ).toEqual([
      ['r1', 'open', '2 consecutive failures'],
      ['r1', 'open', 'probe failed'],
    ]);
    expect(r2.breaker.state('a')).toBe('isolated');
  });

  it('a reset by hand closes the circuit on the other replicas too; garbage on the channel is ignored', async () => {
    const { peers } = bus();
    const r1 = replica(peers, 'r1');
    const r2 = replica(peers, 'r2');
    for (const junk of [
      '',
      'not json',
      '{"v":2}',
      JSON.stringify({ v: 1, from: 'x', endpointId: 'zz', state: 'open', forMs: 5, reason: '' }),
      JSON.stringify({ v: 1, from: 'x', endpointId: 'a', state: 'open', forMs: -1, reason: '' }),
    ])
      peers.publish(junk);
    expect(r1.breaker.state('a')).toBe('closed');
    r1.script.a = () => Promise.resolve({ status: 500 });
    await r1.run();
    await r1.run();
    await flush();
    expect(r2.breaker.state('a')).toBe('open');
    r1.breaker.reset('a');
    await flush();
    expect(r2.breaker.state('a')).toBe('closed');
    expect(r2.changes.at(-1)?.reason).toBe('probe passed on replica r1');
    r2.calls.length = 0;
    await r2.run();
    expect(r2.calls).toEqual(['a']);
  });

  it('a replica that joins during an outage hears of it from the replica that opened the circuit', async () => {
    const { peers, sent, r2 } = await tripped();
    await vi.advanceTimersByTimeAsync(4_000);
    expect(r2.breaker.state('a')).toBe('open');
    const before = sent.length;
    const r3 = replica(peers, 'r3');
    // r3 said hello; r1 answered with what is left of its open period; r2, which only holds it on r1's word, did not.
    expect(sent.slice(before).map((m) => JSON.parse(m))).toEqual([
      { v: 1, from: 'r3', endpointId: '', state: 'hello', reason: 'joined' },
      {
        v: 1,
        from: 'r1',
        endpointId: 'a',
        state: 'open',
        forMs: 6_000,
        reason: '2 consecutive failures; last: HTTP 500',
      },
    ]);
    expect(r3.breaker.snapshot().a).toMatchObject({
      state: 'open',
      reason: 'opened on replica r1: 2 consecutive failures; last: HTTP 500',
      halfOpenAt: Date.now() + 6_000 + GRACE,
    });
    await r3.run();
    expect(r3.calls).toEqual(['b']);
  });

  it('dispose unsubscribes; invalid peers are a ConfigError naming the option', () => {
    const { peers, subs } = bus();
    const r1 = replica(peers, 'r1');
    expect(subs.size).toBe(1);
    r1.breaker.dispose();
    expect(subs.size).toBe(0);
    const router = createRouter({ endpoints: [{ id: 'a', url: 'http://a.test/v1' }] });
    expect(() => attachBreaker(router, { peers: {} as BreakerPeers, env: {} })).toThrow(ConfigError);
    expect(() => attachBreaker(router, { peers: {} as BreakerPeers, env: {} })).toThrow(/breaker\.peers/);
    expect(() => attachBreaker(router, { peers, replicaId: '', env: {} })).toThrow(/breaker\.replicaId/);
  });
});
