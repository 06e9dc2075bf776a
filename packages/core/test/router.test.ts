import { collectEvents } from '@lb/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createRouter,
  type Guard,
  isDeadlineExceededError,
  isLbError,
  isNoHealthyEndpointError,
  NoHealthyEndpointError,
  type RouterEvents,
} from '../src/index.js';
import { EndpointSlot } from '../src/internal.js';

const KEY = (id: string) => `sk-proj-${id}-SECRETSECRETSECRET-N0IA`;
const ep = (id: string, extra: object = {}) => ({
  id,
  url: `http://127.0.0.1:1/${id}/v1`,
  apiKey: KEY(id),
  ...extra,
});
const res = (status: number, headers: Record<string, string> = {}) => ({ status, headers });

describe('failover', () => {
  it('tries endpoints in priority order and returns the first success', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 }), ep('c', { priority: 3 })] });
    const order: string[] = [];
    const out = await r.execute({}, async ({ endpoint }) => {
      order.push(endpoint.id);
      return endpoint.id === 'c' ? res(200) : res(500);
    });
    expect(out.status).toBe(200);
    expect(order).toEqual(['a', 'b', 'c']);
    expect(r.getStats('a')!.failures).toBe(1);
    expect(r.getStats('c')!.successes).toBe(1);
  });

  it('fails over on thrown network errors and timeouts too', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 }), ep('c', { priority: 3 })] });
    const order: string[] = [];
    await r.execute({}, async ({ endpoint }) => {
      order.push(endpoint.id);
      if (endpoint.id === 'a') throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
      if (endpoint.id === 'b')
        throw Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
      return 'ok';
    });
    expect(order).toEqual(['a', 'b', 'c']);
    expect(r.getStats('a')!.errorsByKind).toEqual({ network: 1 });
    expect(r.getStats('b')!.errorsByKind).toEqual({ timeout: 1 });
  });

  it('returns client errors as they came, without failover', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b')] });
    let calls = 0;
    const out = await r.execute({}, async () => {
      calls++;
      return res(400);
    });
    expect(out.status).toBe(400);
    expect(calls).toBe(1);
    const err = Object.assign(new Error('context length exceeded'), { status: 400 });
    await expect(r.execute({}, async () => Promise.reject(err))).rejects.toBe(err);
  });

  it('throws NoHealthyEndpointError with every cause when all fail, keeping the last response', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 })], maxRetries: 1 });
    const discarded: number[] = [];
    const err = await r
      .execute(
        { model: 'gpt-4o' },
        async ({ endpoint }) => ({ ...res(endpoint.id === 'a' ? 500 : 503), id: endpoint.id }),
        {
          discard: (v) => {
            discarded.push(v.status);
          },
        },
      )
      .catch((e: any) => e);
    expect(isNoHealthyEndpointError(err)).toBe(true);
    expect(err).toBeInstanceOf(NoHealthyEndpointError);
    expect(err.message).toMatch(/^No healthy endpoints available/);
    expect(err.attempts.map((a: any) => [a.endpointId, a.status, a.kind])).toEqual([
      ['a', 500, 'server'],
      ['b', 503, 'server'],
    ]);
    expect(err.status).toBe(502);
    expect(err.lastValue.id).toBe('b');
    expect(discarded).toEqual([500]);
    expect(err.toOpenAIError()).toEqual({
      error: { message: err.message, type: 'server_error', code: 'upstream_error', param: null },
    });
  });

  it('with failover disabled makes one attempt', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b')], failover: false });
    let calls = 0;
    await expect(r.execute({}, async () => (calls++, res(500)))).rejects.toThrow(/No healthy endpoints/);
    expect(calls).toBe(1);
  });

  it('says the model is not served when no endpoint serves it', async () => {
    const r = createRouter({ endpoints: [ep('a', { models: ['gpt-4o'] })] });
    const err = await r.execute({ model: 'claude' }, async () => 'x').catch((e: any) => e);
    expect(isLbError(err)).toBe(true);
    expect(err.status).toBe(404);
    expect(err.code).toBe('model_not_found');
  });
});

describe('backoff, Retry-After and deadlines (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fresh endpoints are tried at once; the same endpoint again only after exponential backoff', async () => {
    const r = createRouter({
      endpoints: [ep('a'), ep('b')],
      strategy: 'round-robin',
      maxRetries: 4,
      backoff: { initialMs: 100, multiplier: 2, jitter: 0 },
    });
    const times: [string, number][] = [];
    const t0 = Date.now();
    const p = r.execute({}, async ({ endpoint }) => {
      times.push([endpoint.id, Date.now() - t0]);
      return times.length < 5 ? res(500) : res(200);
    });
    await vi.runAllTimersAsync();
    await p;
    expect(times).toEqual([
      ['a', 0],
      ['b', 0],
      ['a', 100],
      ['b', 300],
      ['a', 700],
    ]);
  });

  it('honours Retry-After: the endpoint cools down for exactly that long', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 })] });
    const { events } = collectEvents(r, ['endpoint:state']);
    const order: string[] = [];
    await r.execute({}, async ({ endpoint }) => {
      order.push(endpoint.id);
      return endpoint.id === 'a' ? res(429, { 'retry-after': '2' }) : res(200);
    });
    expect(order).toEqual(['a', 'b']);
    expect(r.getHealth('a')).toMatchObject({ status: 'cooling' });
    expect(events[0].payload).toMatchObject({
      endpointId: 'a',
      from: 'healthy',
      to: 'cooling',
      until: Date.now() + 2000,
    });
    expect(r.pick()!.endpoint.id).toBe('b');
    vi.advanceTimersByTime(1999);
    expect(r.pick()!.endpoint.id).toBe('b');
    vi.advanceTimersByTime(1);
    expect(r.pick()!.endpoint.id).toBe('a');
    expect(r.getHealth('a')).toEqual({ status: 'healthy' });
  });

  it('retry-after-ms is honoured to the millisecond; without a header the cooldown doubles', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 })], rateLimitCooldownMs: 1000 });
    await r.execute({}, async ({ endpoint }) =>
      endpoint.id === 'a' ? res(429, { 'retry-after-ms': '1234' }) : res(200),
    );
    expect((r.getHealth('a') as any).until - Date.now()).toBe(1234);
    vi.advanceTimersByTime(1234);
    await r.execute({}, async ({ endpoint }) => (endpoint.id === 'a' ? res(429) : res(200)));
    expect((r.getHealth('a') as any).until - Date.now()).toBe(2000);
  });

  it('waits for a single cooling endpoint when it frees up within maxWaitMs', async () => {
    const r = createRouter({ endpoints: [ep('a')], maxWaitMs: 5000 });
    let n = 0;
    const t0 = Date.now();
    let doneAt = 0;
    const p = r
      .execute({}, async () => (++n === 1 ? res(429, { 'retry-after': '3' }) : res(200)))
      .then((v) => {
        doneAt = Date.now() - t0;
        return v;
      });
    await vi.runAllTimersAsync();
    expect((await p).status).toBe(200);
    expect(n).toBe(2);
    expect(doneAt).toBeGreaterThanOrEqual(3000);
    expect(doneAt).toBeLessThan(3100);
  });

  it('answers 429 with the earliest retry time when every endpoint is rate limited beyond maxWaitMs', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b')], maxWaitMs: 1000 });
    const err = await r
      .execute({}, async ({ endpoint }) => res(429, { 'retry-after': endpoint.id === 'a' ? '30' : '20' }))
      .catch((e: any) => e);
    expect(err.status).toBe(429);
    expect(err.code).toBe('rate_limit_exceeded');
    expect(err.retryAfterMs).toBe(20_000);
  });

  it('stops at the overall deadline', async () => {
    const r = createRouter({
      endpoints: [ep('a')],
      maxRetries: 10,
      deadlineMs: 1000,
      backoff: { initialMs: 400, jitter: 0 },
    });
    let calls = 0;
    const p = r.execute({}, async () => (calls++, res(500))).catch((e: any) => e);
    await vi.runAllTimersAsync();
    const err = await p;
    expect(isDeadlineExceededError(err)).toBe(true);
    expect(err.status).toBe(504);
    expect(calls).toBe(2);
  });

  it("bounds an attempt's timeout by what is left of the deadline, and ends with the deadline's error", async () => {
    // The endpoint's own timeout (4 s) is past the deadline (1 s): the deadline must end the hanging attempt.
    const r = createRouter({ endpoints: [ep('a', { timeoutMs: 4000 })], deadlineMs: 1000, maxRetries: 0 });
    let abortedAt: number | undefined;
    const p = r
      .execute({}, ({ signal }) => {
        return new Promise<{ status: number }>((_, reject) =>
          signal!.addEventListener('abort', () => {
            abortedAt = Date.now();
            reject(signal!.reason);
          }),
        );
      })
      .catch((e: any) => e);
    const t0 = Date.now();
    await vi.advanceTimersByTimeAsync(1000);
    const err = await p;
    expect(isDeadlineExceededError(err)).toBe(true);
    expect(err.code).toBe('deadline_exceeded');
    // Aborted at the deadline (fake time), not at the endpoint's 4 s timeout.
    expect(abortedAt! - t0).toBe(1000);
  });

  it('times out a slow attempt and fails over', async () => {
    const r = createRouter({ endpoints: [ep('slow', { timeoutMs: 500 }), ep('b', { priority: 2 })] });
    const order: string[] = [];
    const p = r.execute({}, ({ endpoint, signal }) => {
      order.push(endpoint.id);
      if (endpoint.id === 'b') return Promise.resolve(res(200));
      return new Promise<{ status: number }>((_, reject) =>
        signal!.addEventListener('abort', () => reject(signal!.reason)),
      );
    });
    await vi.advanceTimersByTimeAsync(500);
    expect((await p).status).toBe(200);
    expect(order).toEqual(['slow', 'b']);
    expect(r.getStats('slow')!.errorsByKind).toEqual({ timeout: 1 });
  });
});

describe('abort', () => {
  it('an abort by the caller stops at once, with no further attempts', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 }), ep('c', { priority: 3 })] });
    const ac = new AbortController();
    const order: string[] = [];
    const p = r.execute({ signal: ac.signal }, ({ endpoint, signal }) => {
      order.push(endpoint.id);
      return new Promise<never>((_, reject) => {
        signal!.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        // The caller aborts while this attempt is in flight.
        queueMicrotask(() => ac.abort());
      });
    });
    const err = await p.catch((e: any) => e);
    expect(err.name).toBe('AbortError');
    expect(order).toEqual(['a']);
    expect(r.getStats('a')!.inFlight).toBe(0);
    expect(r.getHealth('a')).toEqual({ status: 'healthy' });
  });

  it("a held stream keeps the caller's abort linked to the attempt signal after the attempt resolved", async () => {
    const r = createRouter({ endpoints: [ep('a', { timeoutMs: 10_000 })] });
    const ac = new AbortController();
    let attemptSignal!: AbortSignal;
    let finish!: () => void;
    await r.execute({ signal: ac.signal }, async (ctx) => {
      attemptSignal = ctx.signal!;
      finish = ctx.hold();
      return res(200);
    });
    expect(attemptSignal).not.toBe(ac.signal);
    ac.abort(new Error('caller left'));
    expect(attemptSignal.aborted).toBe(true);
    finish();
  });

  it('an already aborted signal makes no attempt', async () => {
    const r = createRouter({ endpoints: [ep('a')] });
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    let calls = 0;
    await expect(r.execute({ signal: ac.signal }, async () => ++calls)).rejects.toThrow('gone');
    expect(calls).toBe(0);
  });
});

describe('key health', () => {
  it('401 retires the key for keyRetireMs; a probe (recover) or a hand brings it back', async () => {
    let now = 1_000_000;
    const r = createRouter({
      endpoints: [ep('a'), ep('b', { priority: 2 })],
      keyRetireMs: 60_000,
      now: () => now,
    });
    await r.execute({}, async ({ endpoint }) => (endpoint.id === 'a' ? res(401) : res(200)));
    expect(r.getHealth('a')).toEqual({
      status: 'unhealthy',
      until: now + 60_000,
      reason: 'key rejected (401)',
    });
    expect(r.pick()!.endpoint.id).toBe('b');
    expect(r.recover('a')).toBe(true);
    expect(r.pick()!.endpoint.id).toBe('a');
    await r.execute({}, async ({ endpoint }) => (endpoint.id === 'a' ? res(403) : res(200)));
    now += 60_000;
    expect(r.pick()!.endpoint.id).toBe('a');
  });

  it('setEndpointHealth(false) holds until set true; recover() does not undo it', () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 })] });
    const { events } = collectEvents(r, ['endpoint:override']);
    expect(r.setEndpointHealth('a', false)).toBe(true);
    expect(r.recover('a')).toBe(false);
    expect(r.pick()!.endpoint.id).toBe('b');
    r.setEndpointHealth('a', true, 'admin');
    expect(r.pick()!.endpoint.id).toBe('a');
    expect(r.setEndpointHealth('nope', true)).toBe(false);
    expect(events.map((e) => [e.payload.endpointId, e.payload.healthy, e.payload.reason])).toEqual([
      ['a', false, 'disabled by hand'],
      ['a', true, 'admin'],
    ]);
  });
});

describe('guards', () => {
  it('a veto makes the router pick another endpoint; acquire runs once per chosen attempt', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 })] });
    const acquired: string[] = [];
    const guard: Guard = {
      name: 'no-a',
      admit: (e) => (e.id === 'a' ? { reason: 'blocked for test' } : true),
      acquire: (e) => acquired.push(e.id),
      describe: (e) => ({ blocked: e.id === 'a' }),
    };
    const off = r.addGuard(guard);
    await r.execute({}, async () => res(200));
    expect(acquired).toEqual(['b']);
    const snap = r.snapshot().endpoints[0];
    expect(snap.available).toBe(false);
    expect(snap.unavailableReason).toBe('no-a: blocked for test');
    expect(snap.guards).toEqual({ 'no-a': { blocked: true } });
    off();
    expect(r.pick()!.endpoint.id).toBe('a');
  });

  it("when every endpoint is vetoed as rate limited, the error is a 429 with the guard's earliest time", async () => {
    const now = 5000;
    const r = createRouter({ endpoints: [ep('a'), ep('b')], now: () => now, maxWaitMs: 0 });
    r.addGuard({
      name: 'budget',
      admit: (e) => ({ reason: 'out of budget', until: now + (e.id === 'a' ? 700 : 300), rateLimited: true }),
    });
    const err = await r.execute({}, async () => res(200)).catch((e: any) => e);
    expect(err.status).toBe(429);
    expect(err.retryAfterMs).toBe(300);
  });

  it('a first attempt that succeeds reads the router clock once; a failover reads it again', async () => {
    let reads = 0;
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 })], now: () => ++reads * 1000 });
    r.pick(); // builds the route's eligible list (one reading)
    const seen: number[] = [];
    r.addGuard({ name: 'sees-now', admit: (_e, _r, now) => (seen.push(now), true) });
    let base = reads;
    await r.execute({}, async () => res(200));
    expect(reads - base).toBe(1);
    expect(seen).toEqual([(base + 1) * 1000]); // the guard was asked with that reading
    base = reads;
    await r.execute({}, async ({ endpoint }) => res(endpoint.id === 'a' ? 500 : 200));
    expect(reads - base).toBeGreaterThanOrEqual(2);
  });

  it('a pick reads the clock only while some attached guard uses `now`', () => {
    let reads = 0;
    const r = createRouter({ endpoints: [ep('a'), ep('b')], now: () => ++reads * 1000 });
    r.pick(); // the first pick builds the route's eligible list (which reads the clock once)
    const base = reads;
    const seen: number[] = [];
    const offOwn = r.addGuard({
      name: 'own-clock',
      usesNow: false,
      admit: (_e, _r, now) => {
        seen.push(now);
        return true;
      },
    });
    r.pick();
    r.pick();
    expect(reads).toBe(base);
    expect(seen).toEqual([0, 0]);
    const offTimed = r.addGuard({ name: 'timed', admit: (_e, _r, now) => now > 0 || { reason: 'no clock' } });
    expect(r.pick()).toBeDefined(); // the timed guard admits only with a clock reading
    expect(reads).toBe(base + 1);
    expect(seen[2]).toBe((base + 1) * 1000);
    offTimed();
    r.pick();
    offOwn();
    r.pick();
    expect(reads).toBe(base + 1);
  });
});

describe('events', () => {
  it('emits a typed event for every decision and outcome', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 })] });
    const { events } = collectEvents(r, [
      'endpoint:selected',
      'attempt:start',
      'attempt:success',
      'attempt:failure',
      'endpoint:state',
      'request:done',
      'request:exhausted',
    ]);
    await r.execute({ model: 'gpt-4o', requestId: 'r1' }, async ({ endpoint }) =>
      endpoint.id === 'a' ? res(429, { 'retry-after': '1' }) : res(200),
    );
    expect(events.map((e) => `${e.name}:${e.payload.endpointId ?? ''}`)).toEqual([
      'endpoint:selected:a',
      'attempt:start:a',
      'endpoint:state:a',
      'attempt:failure:a',
      'endpoint:selected:b',
      'attempt:start:b',
      'attempt:success:b',
      'request:done:b',
    ]);
    const failure = events.find((e) => e.name === 'attempt:failure')!.payload;
    expect(failure).toMatchObject({
      requestId: 'r1',
      kind: 'rate-limit',
      status: 429,
      retryAfterMs: 1000,
      countsForBreaker: false,
      failover: true,
    });
    expect(events.at(-1)!.payload).toMatchObject({
      requestId: 'r1',
      attempts: 2,
      status: 200,
      model: 'gpt-4o',
    });
  });

  it('attempt:success says whether the attempt held its stream; acquire gets the request id; guards publish state', async () => {
    const r = createRouter({ endpoints: [ep('a')] });
    const { events } = collectEvents(r, ['attempt:success', 'guard:state']);
    const ids: string[] = [];
    r.addGuard({ name: 'g', admit: () => true, acquire: (_e, _r, _n, id) => ids.push(id) });
    await r.execute({ requestId: 'plain' }, async () => res(200));
    let finish!: () => void;
    await r.execute({ requestId: 'stream' }, async (ctx) => {
      finish = ctx.hold();
      return res(200);
    });
    finish();
    expect(ids).toEqual(['plain', 'stream']);
    expect(events.map((e) => e.payload.held)).toEqual([false, true]);
    const change: RouterEvents['guard:state'] = {
      kind: 'circuit',
      failures: 3,
      guard: 'g',
      endpointId: 'a',
      from: 'closed',
      to: 'open',
      reason: 'test',
      until: 5,
    };
    r.publish('guard:state', change);
    expect(events[2]).toEqual({ name: 'guard:state', payload: { ...change } });
  });

  it('hold and reportUsage work when destructured from the context', async () => {
    const r = createRouter({ endpoints: [ep('a')] });
    const { events } = collectEvents(r, ['attempt:usage', 'attempt:end']);
    let finish!: () => void;
    await r.execute({}, async ({ hold, reportUsage }) => {
      finish = hold();
      reportUsage({ total_tokens: 5 });
      return res(200);
    });
    finish();
    expect(events.map((e) => e.name)).toEqual(['attempt:usage', 'attempt:end']);
  });

  it('a throwing subscriber does not break routing, and the disposer unsubscribes', async () => {
    const r = createRouter({ endpoints: [ep('a')] });
    let calls = 0;
    const off = r.on('attempt:start', () => {
      calls++;
      throw new Error('bad subscriber');
    });
    await expect(r.execute({}, async () => res(200))).resolves.toMatchObject({ status: 200 });
    expect(r.listenerCount('attempt:start')).toBe(1);
    off();
    expect(r.listenerCount('attempt:start')).toBe(0);
    await r.execute({}, async () => res(200));
    expect(calls).toBe(1);
  });

  it('hold() keeps a stream in flight until it ends, and a broken stream counts as a failure', async () => {
    const r = createRouter({ endpoints: [ep('a')] });
    const { events } = collectEvents(r, ['attempt:end', 'attempt:usage']);
    let finish!: (e?: unknown) => void;
    await r.execute({}, async (ctx) => {
      finish = ctx.hold();
      ctx.reportUsage({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
      return res(200);
    });
    expect(r.getStats('a')!.inFlight).toBe(1);
    finish(new TypeError('terminated', { cause: { code: 'ECONNRESET' } }));
    finish();
    expect(r.getStats('a')!.inFlight).toBe(0);
    expect(r.getStats('a')!.failures).toBe(1);
    expect(events.map((e) => e.name)).toEqual(['attempt:usage', 'attempt:end']);
    expect(events[1].payload).toMatchObject({ ok: false, kind: 'network', endpointId: 'a' });
  });

  it('a stream that broke puts its endpoint on stream probation until a stream started after it ends cleanly', async () => {
    const r = createRouter({ endpoints: [ep('a')] });
    const seen: boolean[] = [];
    /** Starts a held stream; resolves with its finish function. */
    const stream = async () => {
      let finish!: (e?: unknown) => void;
      await r.execute({}, async (ctx) => {
        seen.push(ctx.streamProbation);
        finish = ctx.hold();
        return res(200);
      });
      return finish;
    };
    const broken = new TypeError('terminated', { cause: { code: 'ECONNRESET' } });
    const probation = () => r.snapshot().endpoints[0]!.streamProbation;
    const { events } = collectEvents(r, ['endpoint:probation']);
    const told = () => events.map((e) => e.payload.on);
    const early = await stream();
    const first = await stream();
    first(broken);
    expect(probation()).toBe(true);
    // A stream that started before the break proves nothing by ending well.
    early();
    expect(probation()).toBe(true);
    // Nor does one the caller aborted.
    const aborted = await stream();
    aborted(new DOMException('gone', 'AbortError'));
    expect(probation()).toBe(true);
    const clean = await stream();
    clean();
    expect(probation()).toBe(false);
    expect(seen).toEqual([false, false, true, true]);
    // Listeners heard it go on once (the later events changed nothing) and off once.
    expect(told()).toEqual([true, false]);
    expect(events[0].payload).toMatchObject({ endpointId: 'a', on: true });
    // A hand that enables the endpoint ends a probation too.
    const again = await stream();
    again(broken);
    expect(probation()).toBe(true);
    r.setEndpointHealth('a', true);
    expect(probation()).toBe(false);
    expect(told()).toEqual([true, false, true, false]);
    expect(events[3].payload.requestId).toBeUndefined();
    // Enabling an endpoint that was not on probation says nothing.
    r.setEndpointHealth('a', true);
    expect(told()).toHaveLength(4);
  });
});

describe('reload', () => {
  it('keeps stats and state of endpoints that keep their id, and reports the difference', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b')], strategy: 'round-robin' });
    const { events } = collectEvents(r, ['config:reloaded']);
    await r.execute({}, async () => res(200));
    await r.execute({}, async () => res(200));
    r.setEndpointHealth('b', false);
    const diff = r.reload({ endpoints: [ep('a', { weight: 5 }), ep('b'), ep('c')], strategy: 'round-robin' });
    expect(diff).toEqual({ added: ['c'], removed: [], changed: ['a'] });
    expect(events[0].payload).toEqual(diff);
    expect(r.getStats('a')!.requests).toBe(1);
    expect(r.getStats('b')!.requests).toBe(1);
    expect(r.getHealth('b')!.status).toBe('disabled');
    expect(r.getEndpoint('a')!.weight).toBe(5);
  });

  it('an invalid reload changes nothing', () => {
    const r = createRouter({ endpoints: [ep('a')] });
    expect(() => r.reload({ endpoints: [ep('a'), { id: 'x', url: 'htp:/x' }] })).toThrow(
      /endpoints\[1\]\.url: not an http\(s\) URL: "htp:\/x"/,
    );
    expect(() => r.reload({ endpoints: [ep('a'), ep('a')] })).toThrow(/duplicate id "a"/);
    expect(() =>
      r.reload({ endpoints: [ep('a')], models: { m: { backends: [{ endpoint: 'zz' }] } } }),
    ).toThrow(/models\.m\.backends\[0\]\.endpoint: unknown endpoint "zz"/);
    expect(r.endpoints.map((e) => e.id)).toEqual(['a']);
  });

  it('in-flight requests finish on what they started with', async () => {
    const r = createRouter({ endpoints: [ep('a')] });
    let release!: () => void;
    const p = r.execute(
      {},
      ({ endpoint }) => new Promise<string>((ok) => (release = () => ok(endpoint.url))),
    );
    await new Promise((x) => setTimeout(x, 0));
    r.reload({ endpoints: [ep('b')] });
    release();
    expect(await p).toBe('http://127.0.0.1:1/a/v1');
    expect(r.pick()!.endpoint.id).toBe('b');
  });
});

describe('EndpointSlot', () => {
  it("keeps each slot's own value per endpoint, out of sight; an endpoint a reload made starts empty", async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b')] });
    const [a, b] = r.endpoints;
    const one = new EndpointSlot<{ n: number }>();
    const two = new EndpointSlot<string>();
    expect(one.get(a)).toBeUndefined();
    one.set(a, { n: 1 });
    two.set(a, 'two');
    two.set(b, 'b');
    expect(one.get(a)).toEqual({ n: 1 });
    expect(one.get(b)).toBeUndefined();
    expect([two.get(a), two.get(b)]).toEqual(['two', 'b']);
    const { inspect } = await import('node:util');
    for (const text of [
      JSON.stringify(a),
      inspect(a, { showHidden: true, depth: 5 }),
      JSON.stringify({ ...a }),
    ])
      expect(text).not.toContain('two');
    r.reload({ endpoints: [ep('a', { weight: 3 }), ep('b')] });
    expect(r.getEndpoint('a')).not.toBe(a);
    expect(two.get(r.getEndpoint('a')!)).toBeUndefined(); // a new object: nothing carried over
    expect(two.get(b)).toBe('b'); // the old object keeps it (in-flight requests still use it)
    one.set(a, undefined);
    expect(one.get(a)).toBeUndefined();
  });

  it('a released slot holds nothing, and a slot reusing its place never sees its values', () => {
    const r = createRouter({ endpoints: [ep('a')] });
    const [a] = r.endpoints;
    const old = new EndpointSlot<string>();
    old.set(a, 'old state');
    old.release();
    expect(old.get(a)).toBeUndefined();
    old.set(a, 'again');
    expect(old.get(a)).toBeUndefined();
    const next = new EndpointSlot<string>(); // takes the freed place
    expect(next.get(a)).toBeUndefined();
    next.set(a, 'new');
    expect(next.get(a)).toBe('new');
    expect(old.get(a)).toBeUndefined();
    // An endpoint without slots (made by an older copy of the package) is kept aside, and forgotten on release.
    const foreign = { id: 'x' } as unknown as typeof a;
    next.set(foreign, 'aside');
    expect(next.get(foreign)).toBe('aside');
    next.release();
    expect(next.get(foreign)).toBeUndefined();
  });
});

describe('keys never leak', () => {
  it('no string or JSON form of an endpoint, snapshot, event or error shows a key', async () => {
    const r = createRouter({ endpoints: [ep('a'), ep('b')], maxRetries: 1 });
    const { events } = collectEvents(r, [
      'endpoint:selected',
      'attempt:failure',
      'request:exhausted',
      'endpoint:state',
    ]);
    const err = await r
      .execute({}, async ({ endpoint }) => {
        throw new Error(`upstream said: bad key ${endpoint.apiKey}`);
      })
      .catch((e: any) => e);
    const e0 = r.endpoints[0];
    const { inspect } = await import('node:util');
    const texts = [
      JSON.stringify(e0),
      String(e0),
      `${e0}`,
      inspect(e0),
      inspect(e0, { showHidden: true }),
      JSON.stringify({ ...e0 }),
      JSON.stringify(r.snapshot()),
      JSON.stringify(r),
      JSON.stringify(events.map((e) => ({ ...e.payload, endpoint: e.payload.endpoint }))),
      err.message,
      JSON.stringify(err),
      JSON.stringify(err.attempts),
      String(r.getStats('a')!.lastError),
    ];
    for (const t of texts) {
      expect(t).not.toContain('SECRETSECRETSECRET');
    }
    expect(JSON.stringify(e0)).toContain('sk-proj...N0IA');
    expect(err.message).toContain('sk-proj...N0IA');
    expect(e0.apiKey).toBe(KEY('a'));
  });
});

describe('validation', () => {
  it('names the field and the received value', () => {
    expect(() => createRouter({ endpoints: [{ url: 'http://x', priority: -1 }] })).toThrow(
      'endpoints[0].priority: expected a number >= 0, received -1',
    );
    expect(() => createRouter({ endpoints: [ep('a')], maxRetries: -2 })).toThrow(
      'config.maxRetries: expected a number >= 0, received -2',
    );
    expect(() => createRouter({} as any)).toThrow('config.endpoints: expected an array');
  });
});
