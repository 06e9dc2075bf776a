import { isNoHealthyEndpointError } from '@lb/core';
import { describe, expect, it, vi } from 'vitest';
import { bus, fakeTimers, flush, type Reply, setup, status } from './setup.js';

fakeTimers();

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

/** Runs one request to its end, whatever it ends with, and lets cockatiel settle. */
async function settle(t: ReturnType<typeof setup>): Promise<unknown> {
  const r = await t.run().then(
    (v) => v,
    (e: unknown) => e,
  );
  await flush();
  return r;
}

/** Endpoints a, b (threshold 3, open 10 s): both fail until both circuits are open, `a` first. */
async function outage(options: Parameters<typeof setup>[0] = {}) {
  const t = setup(options);
  t.script.a = status(503);
  t.script.b = status(503);
  for (let i = 0; i < 6 && (t.breaker.state('a') !== 'open' || t.breaker.state('b') !== 'open'); i++) {
    await settle(t);
    await vi.advanceTimersByTimeAsync(10);
  }
  expect(t.breaker.state('a')).toBe('open');
  expect(t.breaker.state('b')).toBe('open');
  t.calls.length = 0;
  t.changes.length = 0;
  return t;
}

describe('every candidate open: one early probe of the circuit open longest', () => {
  it('recovery follows the upstream within allOpenProbeIntervalMs, not a whole halfOpenAfterMs', async () => {
    const t = await outage({ allOpenProbeIntervalMs: 1_000 });
    const openedA = t.breaker.snapshot().a.openedAt!;
    const openedB = t.breaker.snapshot().b.openedAt!;
    expect(openedA).toBeLessThanOrEqual(openedB);
    // The upstreams come back. The first request after the last probe's interval probes `a` (open longest) and
    // closes it: 1 s after the outage, not 10 s.
    t.script.a = status(200);
    t.script.b = status(200);
    await vi.advanceTimersByTimeAsync(1_000);
    const res = (await settle(t)) as Reply;
    expect(res.status).toBe(200);
    expect(t.calls).toEqual(['a']);
    expect(t.breaker.state('a')).toBe('closed');
    expect(t.changes.map((c) => `${c.endpointId}:${c.from}>${c.to}`)).toEqual([
      'a:open>half-open',
      'a:half-open>closed',
    ]);
    expect(t.changes[0].reason).toMatch(/^every candidate open: probing the one open longest/);
    expect(t.changes[1].reason).toBe('probe succeeded');
    // `b` is not probed early any more (a candidate is closed): it waits for its own half-open.
    expect(t.breaker.state('b')).toBe('open');
    for (let i = 0; i < 3; i++) await settle(t);
    expect(t.calls).toEqual(['a', 'a', 'a', 'a']);
  });

  it('one probe at a time: requests during a probe fail fast; a failed probe re-opens and the next goes to the other', async () => {
    const t = await outage({ allOpenProbeIntervalMs: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    const probe = deferred<Reply>();
    t.script.a = () => probe.promise;
    const first = settle(t);
    expect(t.breaker.state('a')).toBe('half-open');
    // Concurrent requests while the probe is in flight: no call upstream, a 503-style error at once, which asks
    // them back for the next early probe (within the interval), not for the end of the open periods (10 s).
    const during = await Promise.all([settle(t), settle(t), settle(t)]);
    expect(during.every((e) => isNoHealthyEndpointError(e))).toBe(true);
    for (const e of during as { retryAfterMs: number }[]) {
      expect(e.retryAfterMs).toBeGreaterThan(0);
      expect(e.retryAfterMs).toBeLessThanOrEqual(1_000);
    }
    expect(t.calls).toEqual(['a']);
    probe.resolve({ status: 503 });
    await first;
    expect(t.breaker.state('a')).toBe('open');
    expect(t.changes.at(-1)).toMatchObject({ endpointId: 'a', from: 'half-open', to: 'open' });
    expect(t.changes.at(-1)!.reason).toMatch(/^probe failed/);
    // Within the interval nothing is probed…
    t.calls.length = 0;
    await vi.advanceTimersByTimeAsync(500);
    expect(isNoHealthyEndpointError(await settle(t))).toBe(true);
    expect(t.calls).toEqual([]);
    // …after it, `b` (now the one open longest) is.
    await vi.advanceTimersByTimeAsync(500);
    t.script.b = status(200);
    expect(((await settle(t)) as Reply).status).toBe(200);
    expect(t.calls).toEqual(['b']);
    expect(t.breaker.state('b')).toBe('closed');
  });

  it('no early probe while any candidate is closed, nor for a circuit an upstream Retry-After holds open', async () => {
    const t = setup();
    t.script.a = status(500);
    for (let i = 0; i < 3; i++) await settle(t);
    expect(t.breaker.state('a')).toBe('open');
    t.calls.length = 0;
    for (let i = 0; i < 3; i++) {
      await vi.advanceTimersByTimeAsync(2_000);
      await settle(t);
    }
    expect(t.calls).toEqual(['b', 'b', 'b']);

    const u = setup();
    u.script.a = status(503, { 'retry-after': '120' });
    u.script.b = status(503, { 'retry-after': '120' });
    for (let i = 0; i < 4; i++) await settle(u);
    expect(u.breaker.state('a')).toBe('open');
    expect(u.breaker.state('b')).toBe('open');
    u.calls.length = 0;
    await vi.advanceTimersByTimeAsync(5_000);
    const err = await settle(u);
    expect(isNoHealthyEndpointError(err)).toBe(true);
    expect(u.calls).toEqual([]);
  });

  it('probeWhenAllOpen: false waits for each circuit’s own half-open', async () => {
    const t = await outage({ probeWhenAllOpen: false });
    t.script.a = status(200);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(isNoHealthyEndpointError(await settle(t))).toBe(true);
    expect(t.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(((await settle(t)) as Reply).status).toBe(200);
    expect(t.calls).toEqual(['a']);
  });

  it('pick and snapshots stay pure: they never start the early probe', async () => {
    const t = await outage();
    await vi.advanceTimersByTimeAsync(1_000);
    for (let i = 0; i < 5; i++) expect(t.router.pick()?.endpoint.id).toBe('a');
    expect(t.router.snapshot().endpoints.every((e) => !e.available)).toBe(true);
    expect(t.breaker.state('a')).toBe('open');
    expect(t.changes).toEqual([]);
  });

  it('rejects a bad allOpenProbeIntervalMs or probeWhenAllOpen, naming the value', () => {
    expect(() => setup({ allOpenProbeIntervalMs: -1 })).toThrow(/allOpenProbeIntervalMs.*-1/);
    expect(() => setup({ probeWhenAllOpen: 'yes' as unknown as boolean })).toThrow(/probeWhenAllOpen.*yes/);
  });
});

describe('every candidate open, fleet-wide (peers)', () => {
  it('a replica announces its early probe; the others wait for its word instead of probing too', async () => {
    const { peers, sent } = bus();
    const opts = { peers, peerGraceMs: 5_000, allOpenProbeIntervalMs: 1_000 };
    const r1 = await outage({ ...opts, replicaId: 'r1' });
    const r2 = setup({ ...opts, replicaId: 'r2' });
    r2.script.a = status(200);
    r2.script.b = status(200);
    // r2 learnt both circuits from r1 (`open` on r1's word).
    expect(r2.breaker.state('a')).toBe('open');
    expect(r2.breaker.state('b')).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    const probe = deferred<Reply>();
    r1.script.a = () => probe.promise;
    const first = settle(r1);
    expect(JSON.parse(sent.at(-1)!)).toMatchObject({
      from: 'r1',
      endpointId: 'a',
      state: 'probing',
      forMs: 5_000,
    });
    // r2 sends nothing upstream while r1's probe is out, even past its own interval.
    await vi.advanceTimersByTimeAsync(1_500);
    expect(isNoHealthyEndpointError(await settle(r2))).toBe(true);
    expect(r2.calls).toEqual([]);
    // The probe passes on r1: `closed` reaches r2, whose requests go to `a` again.
    probe.resolve({ status: 200 });
    await first;
    expect(r1.breaker.state('a')).toBe('closed');
    await flush();
    expect(r2.breaker.state('a')).toBe('closed');
    expect(((await settle(r2)) as Reply).status).toBe(200);
    expect(r2.calls).toEqual(['a']);
  });
});
