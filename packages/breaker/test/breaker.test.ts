import { ConfigError, createRouter, isNoHealthyEndpointError, type Router } from '@lb/core';
import { fakeKey } from '@lb/testing';
import { describe, expect, it, vi } from 'vitest';
import { attachBreaker } from '../src/index.js';
import { fakeTimers, flush, ok, type Reply, type Script, setup, status } from './setup.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function trip(t: ReturnType<typeof setup>, n = 3, s = 500) {
  t.script.a = status(s);
  for (let i = 0; i < n; i++) await t.run();
  await flush();
}

fakeTimers();

describe('attachBreaker: consecutive policy', () => {
  it('opens after N endpoint failures and routes around the open endpoint', async () => {
    const t = setup();
    await trip(t);
    expect(t.calls).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
    expect(t.breaker.state('a')).toBe('open');
    expect(t.changes).toHaveLength(1);
    expect(t.changes[0]).toMatchObject({ endpointId: 'a', from: 'closed', to: 'open', failures: 3 });
    expect(t.changes[0].reason).toContain('3 consecutive failures; last: HTTP 500');
    expect(t.changes[0].until).toBe(t.changes[0].at + 10_000);

    t.calls.length = 0;
    await t.run();
    expect(t.calls).toEqual(['b']);
    const snap = t.router.snapshot().endpoints.find((e) => e.id === 'a')!;
    expect(snap.available).toBe(false);
    expect(snap.unavailableReason).toMatch(/^breaker: open: 3 consecutive failures/);
    expect(snap.guards.breaker).toMatchObject({ state: 'open', failures: 3, opens: 1 });
    expect(t.breaker.snapshot().b).toMatchObject({ state: 'closed', failures: 0 });
  });

  it('lets exactly one probe through when half-open and closes on its success', async () => {
    const t = setup();
    await trip(t);
    await vi.advanceTimersByTimeAsync(10_000);
    const probe = deferred<Reply>();
    t.script.a = () => probe.promise;
    t.calls.length = 0;
    const first = t.run();
    expect(t.breaker.state('a')).toBe('half-open');
    // Concurrent requests pick the other endpoint while the probe is in flight.
    await Promise.all([t.run(), t.run()]);
    expect(t.calls).toEqual(['a', 'b', 'b']);
    expect(t.router.snapshot().endpoints[0].unavailableReason).toBe(
      'breaker: half-open: a probe request is in flight',
    );
    probe.resolve({ status: 200 });
    await first;
    await flush();
    expect(t.breaker.state('a')).toBe('closed');
    expect(t.changes.map((c) => `${c.from}>${c.to}`)).toEqual([
      'closed>open',
      'open>half-open',
      'half-open>closed',
    ]);
    expect(t.changes[2].reason).toBe('probe succeeded');
    t.calls.length = 0;
    await t.run();
    expect(t.calls).toEqual(['a']);
  });

  it('admit stays pure: snapshots never take the probe slot', async () => {
    const t = setup();
    await trip(t);
    await vi.advanceTimersByTimeAsync(10_000);
    for (let i = 0; i < 5; i++) expect(t.router.snapshot().endpoints[0].available).toBe(true);
    expect(t.router.pick()?.endpoint.id).toBe('a');
    expect(t.breaker.state('a')).toBe('open');
    t.calls.length = 0;
    await t.run();
    await flush();
    expect(t.calls).toEqual(['a', 'b']);
    expect(t.breaker.state('a')).toBe('open');
    expect(t.breaker.snapshot().a.opens).toBe(2);
  });

  it('re-opens on a failed probe, for longer each time with halfOpenBackoff, capped', async () => {
    const t = setup({ halfOpenBackoff: { multiplier: 2, maxMs: 25_000 } });
    await trip(t);
    const periods: number[] = [];
    for (let i = 0; i < 3; i++) {
      const open = t.changes.filter((c) => c.to === 'open').at(-1)!;
      periods.push(open.until! - open.at);
      await vi.advanceTimersByTimeAsync(open.until! - Date.now());
      await t.run();
      await flush();
      expect(t.breaker.state('a')).toBe('open');
    }
    expect(periods).toEqual([10_000, 20_000, 25_000]);
    const last = t.changes.at(-1)!;
    expect(last).toMatchObject({ from: 'half-open', to: 'open' });
    expect(last.reason).toBe('probe failed; last: HTTP 500');
  });

  it('never counts 400s or 429s, and a success resets the count', async () => {
    const t = setup();
    t.script.a = status(400);
    for (let i = 0; i < 6; i++) expect((await t.run()).status).toBe(400);
    t.script.a = status(429, { 'retry-after-ms': '1' });
    for (let i = 0; i < 6; i++) {
      await t.run();
      await vi.advanceTimersByTimeAsync(5);
    }
    t.script.a = status(500);
    await t.run();
    await t.run();
    t.script.a = ok;
    await t.run();
    t.script.a = status(503);
    await t.run();
    await t.run();
    await flush();
    expect(t.breaker.state('a')).toBe('closed');
    expect(t.breaker.snapshot().a.failures).toBe(2);
    expect(t.changes).toEqual([]);
  });

  it('counts thrown network errors and timeouts', async () => {
    const t = setup();
    t.script.a = () =>
      Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    await t.run();
    t.script.a = () => Promise.reject(Object.assign(new Error('headers timeout'), { name: 'TimeoutError' }));
    await t.run();
    await t.run();
    await flush();
    expect(t.breaker.state('a')).toBe('open');
    expect(t.breaker.snapshot().a.lastFailure).toContain('headers timeout');
  });

  it('keeps an upstream 503 Retry-After as the open period', async () => {
    const t = setup();
    await trip(t, 2);
    t.script.a = status(503, { 'retry-after': '120' });
    await t.run();
    await flush();
    const open = t.changes[0];
    expect(open.until! - open.at).toBe(120_000);
    expect(t.router.snapshot().endpoints[0].guards.breaker).toMatchObject({ halfOpenAt: open.until });
  });
});

describe('attachBreaker: streams', () => {
  const stream =
    (broken: boolean): Script =>
    (ctx) => {
      const end = ctx.hold();
      setTimeout(
        () => end(broken ? Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) : undefined),
        1,
      );
      return Promise.resolve({ status: 200 });
    };

  it('counts a stream that breaks after the first byte', async () => {
    const t = setup();
    t.script.a = stream(true);
    for (let i = 0; i < 3; i++) {
      await t.run();
      await vi.advanceTimersByTimeAsync(2);
    }
    expect(t.breaker.state('a')).toBe('open');
    expect(t.changes[0].reason).toContain('socket hang up');
  });

  it('does not count finished streams, nor broken ones with countStreamFailures: false', async () => {
    const t = setup();
    t.script.a = stream(false);
    for (let i = 0; i < 5; i++) {
      await t.run();
      await vi.advanceTimersByTimeAsync(2);
    }
    expect(t.breaker.snapshot().a.counts).toMatchObject({ totalSuccesses: 5, totalFailures: 0 });

    const u = setup({ countStreamFailures: false });
    u.script.a = stream(true);
    for (let i = 0; i < 5; i++) {
      await u.run();
      await vi.advanceTimersByTimeAsync(2);
    }
    expect(u.breaker.state('a')).toBe('closed');
    expect(u.breaker.snapshot().a.counts.totalSuccesses).toBe(5);
  });

  it('tells held streams from plain responses when both interleave on one endpoint', async () => {
    const t = setup({ threshold: 100 });
    let n = 0;
    t.script.a = (ctx) => {
      if (n++ % 2 === 1) return ok();
      const end = ctx.hold();
      setTimeout(() => end(Object.assign(new Error('terminated'), { code: 'UND_ERR_SOCKET' })), 5 + n);
      return ok();
    };
    await Promise.all(Array.from({ length: 8 }, () => t.run()));
    expect(t.router.getStats('a')?.inFlight).toBe(4);
    expect(t.breaker.snapshot().a.counts).toMatchObject({ totalSuccesses: 4, totalFailures: 0 });
    await vi.advanceTimersByTimeAsync(20);
    expect(t.router.getStats('a')?.inFlight).toBe(0);
    expect(t.breaker.snapshot().a.counts).toMatchObject({ totalSuccesses: 4, totalFailures: 4 });
  });

  it('holds the half-open slot until a probing stream ends', async () => {
    const t = setup();
    await trip(t);
    await vi.advanceTimersByTimeAsync(10_000);
    let end!: (e?: unknown) => void;
    t.script.a = (ctx) => {
      end = ctx.hold();
      return Promise.resolve({ status: 200 });
    };
    await t.run();
    await flush();
    expect(t.breaker.state('a')).toBe('half-open');
    t.calls.length = 0;
    await t.run();
    expect(t.calls).toEqual(['b']);
    end();
    await flush();
    expect(t.breaker.state('a')).toBe('closed');
  });
});

describe('attachBreaker: probes, control and lifecycle', () => {
  it('re-arms when the caller aborts the probe: the next request probes again', async () => {
    const t = setup();
    await trip(t);
    await vi.advanceTimersByTimeAsync(10_000);
    t.script.a = (ctx) =>
      new Promise((_, reject) => ctx.signal!.addEventListener('abort', () => reject(ctx.signal!.reason)));
    const ac = new AbortController();
    const probe = t.run({ signal: ac.signal });
    expect(t.breaker.state('a')).toBe('half-open');
    ac.abort();
    await expect(probe).rejects.toBeDefined();
    await flush();
    expect(t.breaker.state('a')).toBe('open');
    expect(t.changes.at(-1)!.reason).toContain('probe aborted');
    t.script.a = ok;
    t.calls.length = 0;
    await t.run();
    await flush();
    expect(t.calls).toEqual(['a']);
    expect(t.breaker.state('a')).toBe('closed');
  });

  it('gives up a probe that never settles after probeTimeoutMs', async () => {
    const t = setup({ probeTimeoutMs: 30_000 });
    await trip(t);
    await vi.advanceTimersByTimeAsync(10_000);
    t.script.a = (ctx) => {
      ctx.hold(); // a stream nobody ever ends
      return ok();
    };
    await t.run();
    await vi.advanceTimersByTimeAsync(29_999);
    t.calls.length = 0;
    await t.run();
    expect(t.calls).toEqual(['b']);
    await vi.advanceTimersByTimeAsync(1);
    t.script.a = ok;
    await t.run();
    await flush();
    expect(t.calls).toEqual(['b', 'a']);
    expect(t.breaker.state('a')).toBe('closed');
    expect(t.changes.slice(1).map((c) => [c.to, c.reason])).toEqual([
      ['half-open', 'open period over: letting one probe request through'],
      ['open', 'probe unsettled after 30000 ms; probing again'],
      ['half-open', 'open period over: letting one probe request through'],
      ['closed', 'probe succeeded'],
    ]);
  });

  it('isolates by hand until reset, and reset clears counts', async () => {
    const t = setup();
    expect(t.breaker.isolate('nope')).toBe(false);
    expect(t.breaker.isolate('a', 'maintenance')).toBe(true);
    expect(t.breaker.state('a')).toBe('isolated');
    await vi.advanceTimersByTimeAsync(3_600_000);
    await t.run();
    expect(t.calls).toEqual(['b']);
    expect(t.router.snapshot().endpoints[0].unavailableReason).toBe('breaker: isolated: maintenance');
    expect(t.breaker.reset('a')).toBe(true);
    expect(t.breaker.state('a')).toBe('closed');
    expect(t.changes.map((c) => [c.to, c.reason])).toEqual([
      ['isolated', 'maintenance'],
      ['closed', 'reset by hand'],
    ]);
    await trip(t, 2);
    expect(t.breaker.snapshot().a.failures).toBe(2);
    t.breaker.reset('a');
    expect(t.breaker.snapshot().a.failures).toBe(0);
  });

  it('failures of attempts started before a reset do not count into the fresh circuit', async () => {
    const t = setup({ threshold: 2 });
    const gates = [deferred<Reply>(), deferred<Reply>(), deferred<Reply>()];
    let i = 0;
    t.script.a = () => gates[i++].promise;
    // Three requests in flight on a closed circuit, then a reset by hand.
    const runs = [t.run(), t.run(), t.run()];
    expect(i).toBe(3);
    t.breaker.reset('a');
    for (const g of gates) g.resolve({ status: 500 });
    await Promise.all(runs);
    await flush();
    expect(t.breaker.state('a')).toBe('closed');
    expect(t.breaker.snapshot().a.failures).toBe(0);
    // Attempts started after the reset count as usual.
    t.script.a = status(500);
    await t.run();
    await t.run();
    await flush();
    expect(t.breaker.state('a')).toBe('open');
  });

  it('recordProbe moves an open circuit to closed through half-open without a user request', async () => {
    const t = setup();
    expect(t.breaker.recordProbe('a', true)).toBe(false);
    await trip(t);
    t.calls.length = 0;
    expect(t.breaker.recordProbe('a', false)).toBe(false);
    expect(t.breaker.recordProbe('a', true)).toBe(true);
    await flush();
    expect(t.breaker.state('a')).toBe('closed');
    expect(t.calls).toEqual([]);
    expect(t.changes.slice(1).map((c) => [c.to, c.reason])).toEqual([
      ['half-open', 'health probe passed'],
      ['closed', 'health probe passed'],
    ]);
  });

  it('drops circuits of endpoints that leave the config and keeps the others', async () => {
    const t = setup({}, ['a', 'b', 'c']);
    await trip(t);
    t.script.b = status(500);
    t.script.c = ok;
    for (let i = 0; i < 3; i++) await t.run();
    await flush();
    expect([t.breaker.state('a'), t.breaker.state('b')]).toEqual(['open', 'open']);
    const cfg = t.router.config;
    t.router.reload({ ...cfg, endpoints: cfg.endpoints.filter((e) => e.id !== 'a') });
    expect(t.breaker.state('b')).toBe('open');
    expect(t.breaker.snapshot()).not.toHaveProperty('a');
    t.router.reload(cfg);
    expect(t.breaker.state('a')).toBe('closed');
  });

  it('dispose removes the guard and the listeners', async () => {
    const t = setup();
    await trip(t);
    expect(t.router.guards.map((g) => g.name)).toEqual(['breaker']);
    t.breaker.dispose();
    expect(t.router.guards).toEqual([]);
    t.calls.length = 0;
    await t.run();
    expect(t.calls).toEqual(['a', 'b']);
    expect(t.breaker.state('a')).toBe('closed');
  });

  it('a throwing state listener does not break routing', async () => {
    const t = setup();
    t.breaker.on('state', () => {
      throw new Error('boom');
    });
    await trip(t);
    expect(t.breaker.state('a')).toBe('open');
  });
  it("a pick needs none of the router's clock: the breaker reads its own, and only while a circuit is not closed", async () => {
    let reads = 0;
    const router = createRouter({
      endpoints: ['a', 'b'].map((id, i) => ({
        id,
        url: `http://${id}.test/v1`,
        apiKey: fakeKey(id),
        priority: i + 1,
      })),
      now: () => {
        reads++;
        return Date.now();
      },
      maxRetries: 0,
    });
    const breaker = attachBreaker(router, { threshold: 1, halfOpenAfterMs: 5_000, env: {} });
    router.pick();
    const base = reads;
    expect(router.pick()?.endpoint.id).toBe('a');
    expect(reads).toBe(base);
    await router.execute({}, status(500)).catch(() => {});
    await flush();
    expect(breaker.state('a')).toBe('open');
    const after = reads;
    expect(router.pick()?.endpoint.id).toBe('b');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(router.pick()?.endpoint.id).toBe('a');
    expect(reads).toBe(after);
  });
});

describe('attachBreaker: other policies', () => {
  it('sampling: opens when the failure ratio over the window passes the threshold', async () => {
    const t = setup({ sampling: { threshold: 0.5, durationMs: 10_000, minimumRps: 0.5 } });
    const seq = [ok, ok, status(500), status(500)];
    for (const s of seq) {
      t.script.a = s;
      await t.run();
    }
    await flush();
    expect(t.breaker.state('a')).toBe('closed'); // 4 calls: below the minimum throughput
    t.script.a = status(500);
    await t.run();
    await flush();
    expect(t.breaker.state('a')).toBe('open');
    expect(t.changes[0].reason).toContain('failure rate above 0.5 (3 of 5 failed)');
  });

  it('shouldTrip decides instead of the threshold (gobreaker ReadyToTrip)', async () => {
    const seen: number[] = [];
    const t = setup({
      threshold: 100,
      shouldTrip: (c) => {
        seen.push(c.totalFailures);
        return c.totalFailures >= 2 && c.totalFailures / c.requests > 0.5;
      },
    });
    t.script.a = ok;
    await t.run();
    await trip(t, 2);
    expect(t.breaker.state('a')).toBe('open');
    expect(seen).toEqual([1, 2]);
  });
});

describe('attachBreaker: options', () => {
  it('the entry exports exactly the two attach functions', async () => {
    expect(Object.keys(await import('../src/index.js')).sort()).toEqual([
      'attachBreaker',
      'attachHealthChecks',
    ]);
  });

  const router = (): Router => createRouter({ endpoints: [{ id: 'a', url: 'http://a.test/v1' }] });

  it('validates options, naming the received value', () => {
    expect(() => attachBreaker(router(), { threshold: 0 })).toThrow(
      'breaker.threshold: expected an integer >= 1, received 0',
    );
    expect(() => attachBreaker(router(), { policy: 'random' as never })).toThrow(/received "random"/);
    expect(() => attachBreaker(router(), { sampling: { threshold: 1 } })).toThrow(/strictly between 0 and 1/);
    expect(() => attachBreaker(router(), { halfOpenBackoff: { maxMs: 10 }, halfOpenAfterMs: 100 })).toThrow(
      'breaker.halfOpenBackoff.maxMs: expected a number >= 100, received 10',
    );
    expect(() => attachBreaker(router(), { shouldTrip: 1 as never })).toThrow(ConfigError);
    expect(() => attachBreaker(router(), { env: { CIRCUIT_BREAKER_THRESHOLD: 'five' } })).toThrow(
      'CIRCUIT_BREAKER_THRESHOLD: expected an integer, received "five"',
    );
    expect(() => attachBreaker({} as Router)).toThrow(/expected an @lb\/core Router/);
    const r = router();
    attachBreaker(r, { env: {} });
    expect(() => attachBreaker(r, { env: {} })).toThrow(/a guard named "breaker" is already attached/);
    expect(attachBreaker(r, { env: {}, name: 'breaker-2' }).name).toBe('breaker-2');
  });

  it('reads CIRCUIT_BREAKER_THRESHOLD and CIRCUIT_BREAKER_TIMEOUT (seconds, or 1m30s); explicit options win', async () => {
    const t = setup({
      threshold: undefined,
      halfOpenAfterMs: undefined,
      env: { CIRCUIT_BREAKER_THRESHOLD: '2', CIRCUIT_BREAKER_TIMEOUT: '30' },
    });
    await trip(t, 2);
    expect(t.changes[0].until! - t.changes[0].at).toBe(30_000);
    // Text with units too, as @lb/config-env reads the same variable.
    const d = setup({
      threshold: 1,
      halfOpenAfterMs: undefined,
      env: { CIRCUIT_BREAKER_TIMEOUT: ' 1m30s ' },
    });
    await trip(d, 1);
    expect(d.changes[0].until! - d.changes[0].at).toBe(90_000);
    const u = setup({ threshold: 4, env: { CIRCUIT_BREAKER_THRESHOLD: '2' } });
    await trip(u, 3);
    expect(u.breaker.state('a')).toBe('closed');
  });

  it('all endpoints open, probeWhenAllOpen false: the router reports when the first comes back', async () => {
    const t = setup({ probeWhenAllOpen: false }, ['a']);
    t.script.a = status(500);
    const settle = async () => {
      const p = t.run().catch((e) => e);
      await vi.advanceTimersByTimeAsync(5);
      return p;
    };
    for (let i = 0; i < 3 && t.breaker.state('a') !== 'open'; i++) await settle();
    expect(t.breaker.state('a')).toBe('open');
    t.calls.length = 0;
    const err = await settle();
    expect(t.calls).toEqual([]);
    expect(isNoHealthyEndpointError(err)).toBe(true);
    expect(err.retryAfterMs).toBeGreaterThan(9_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(10_000);
  });
});

describe('enabled by hand', () => {
  it('setEndpointHealth(id, true) closes an open circuit', async () => {
    const router = createRouter({
      endpoints: [
        { id: 'a', url: 'http://127.0.0.1:1/v1', apiKey: fakeKey('a') },
        { id: 'b', url: 'http://127.0.0.1:2/v1', apiKey: fakeKey('b'), priority: 2 },
      ],
    });
    const breaker = attachBreaker(router, { threshold: 1, halfOpenAfterMs: 60_000 });
    await router.execute({}, async ({ endpoint }) => ({
      status: endpoint.id === 'a' ? 500 : 200,
      headers: {},
    }));
    expect(breaker.state('a')).toBe('open');
    expect(router.pick()!.endpoint.id).toBe('b');
    router.setEndpointHealth('a', true, 'admin');
    expect(breaker.state('a')).toBe('closed');
    expect(router.pick()!.endpoint.id).toBe('a');
    breaker.dispose();
  });
});
