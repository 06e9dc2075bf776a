import { ConfigError, createRouter, maskKey, type RouterConfig } from '@lb/core';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  attachBreaker,
  attachHealthChecks,
  type HealthCheckOptions,
  type HealthCheckResult,
} from '../src/index.js';

// Real sockets need the real event loop: only timers and the clock are faked.
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Waits for real I/O (not timers) until `cond` holds. */
async function io(cond: () => boolean): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > 5000) throw new Error('io: condition not met');
    await new Promise((r) => setImmediate(r));
  }
}

const keyA = fakeKey('alpha');
const keyB = fakeKey('bravo');

function endpoints(...ids: string[]): RouterConfig {
  return {
    endpoints: ids.map((id, i) => ({
      id,
      url: `http://${id}.test/v1`,
      apiKey: fakeKey(id),
      priority: i + 1,
    })),
  };
}

type FetchFn = NonNullable<HealthCheckOptions['fetch']>;

/** A fetch whose answers the test hands out one by one. */
function manualFetch() {
  const calls: { url: string; init: RequestInit; answer: (r: Response | Error) => void }[] = [];
  const fetch: FetchFn = (url, init) =>
    new Promise((resolve, reject) => {
      calls.push({ url, init, answer: (r) => (r instanceof Error ? reject(r) : resolve(r)) });
      init.signal?.addEventListener('abort', () => reject(init.signal!.reason));
    });
  return { calls, fetch };
}

const answering =
  (status: number): FetchFn =>
  async () =>
    new Response('{}', { status });

describe('attachHealthChecks with local upstreams', () => {
  let A: FakeUpstream;
  let B: FakeUpstream;
  afterEach(async () => {
    await Promise.all([A?.close(), B?.close()]);
  });

  it('a revoked key comes back through its probe with no user request failing', async () => {
    A = await startFakeUpstream({ name: 'A', acceptKeys: [keyA] });
    B = await startFakeUpstream({ name: 'B', acceptKeys: [keyB] });
    const router = createRouter({
      endpoints: [
        { id: 'a', url: A.url, apiKey: keyA, priority: 1, headers: { 'x-team': 'search' } },
        { id: 'b', url: B.url, apiKey: keyB, priority: 2 },
      ],
    });
    const health = attachHealthChecks(router, { intervalMs: 1000, jitter: 0, env: {} });
    const results: HealthCheckResult[] = [];
    health.on('result', (r) => results.push(r));
    const chat = async () => {
      const res = await router.execute(
        { model: 'gpt-4o-mini' },
        ({ endpoint, signal }) =>
          fetch(`${endpoint.url}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${endpoint.apiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
            signal,
          }),
        { discard: (r) => r.body?.cancel() },
      );
      const body = await res.json();
      return { status: res.status, by: body.system_fingerprint as string };
    };

    A.setAcceptKeys([fakeKey('rotated')]); // the key is revoked upstream
    await vi.advanceTimersByTimeAsync(1000);
    await io(() => results.length === 2);
    const a1 = results.find((r) => r.endpointId === 'a')!;
    expect(a1).toMatchObject({ ok: false, kind: 'auth', status: 401, action: 'marked-unhealthy' });
    expect(router.getHealth('a')?.status).toBe('unhealthy');

    for (let i = 0; i < 3; i++) expect(await chat()).toMatchObject({ status: 200 });
    expect(A.count('/chat/completions')).toBe(0);
    expect(B.count('/chat/completions')).toBe(3);

    A.setAcceptKeys([keyA]); // the key is restored
    await vi.advanceTimersByTimeAsync(1000);
    await io(() => results.length === 4);
    expect(results.filter((r) => r.endpointId === 'a').at(-1)).toMatchObject({
      ok: true,
      status: 200,
      action: 'recovered',
    });
    expect(router.getHealth('a')?.status).toBe('healthy');
    expect(await chat()).toMatchObject({ status: 200, by: expect.stringContaining('A') });
    expect(A.count('/chat/completions')).toBe(1);

    const probes = A.requests.filter((r) => r.path === '/v1/models');
    expect(probes).toHaveLength(2);
    expect(probes[0].method).toBe('GET');
    expect(probes[0].headers.authorization).toBe(`Bearer ${keyA}`);
    expect(probes[0].headers['x-team']).toBe('search');
    const snap = health.snapshot().a;
    expect(snap).toMatchObject({ ok: true, status: 200, checks: 2, consecutiveFailures: 0 });
    expect(typeof snap.responseTime).toBe('number');
    expect(snap.nextCheckAt).toBe(Date.now() + 1000);
    health.dispose();
  });
});

describe('attachHealthChecks: scheduling', () => {
  it('never runs two probes of one endpoint at once', async () => {
    const router = createRouter(endpoints('a'));
    const m = manualFetch();
    const health = attachHealthChecks(router, {
      intervalMs: 1000,
      jitter: 0,
      fetch: m.fetch,
      timeoutMs: 60_000,
    });
    await vi.advanceTimersByTimeAsync(1000);
    expect(m.calls).toHaveLength(1);
    const p1 = health.checkNow('a');
    const p2 = health.checkNow();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(m.calls).toHaveLength(1);
    m.calls[0].answer(new Response('{}', { status: 200 }));
    const [[r1], [r2]] = await Promise.all([p1, p2]);
    expect(r1).toBe(r2);
    expect(r1).toMatchObject({ endpointId: 'a', ok: true });
    expect(m.calls[0].url).toBe('http://a.test/v1/models');
    await vi.advanceTimersByTimeAsync(999);
    expect(m.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(m.calls).toHaveLength(2);
    health.dispose();
    expect(m.calls[1].init.signal?.aborted).toBe(true);
  });

  it('is off by default; OPENAI_HEALTH_CHECK_INTERVAL turns it on', async () => {
    const router = createRouter(endpoints('a'));
    const off = vi.fn(answering(200));
    const h1 = attachHealthChecks(router, { fetch: off, env: {} });
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(off).not.toHaveBeenCalled();
    expect(h1.snapshot().a).toMatchObject({ checks: 0, nextCheckAt: undefined, lastCheckAt: undefined });
    h1.dispose();

    const on = vi.fn(answering(200));
    const h2 = attachHealthChecks(router, {
      fetch: on,
      jitter: 0,
      env: { OPENAI_HEALTH_CHECK_INTERVAL: '30s' },
    });
    await vi.advanceTimersByTimeAsync(30_000);
    expect(on).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(on).toHaveBeenCalledTimes(2);
    h2.dispose();
    await vi.advanceTimersByTimeAsync(300_000);
    expect(on).toHaveBeenCalledTimes(2);
  });

  it('jitters each interval', () => {
    const router = createRouter(endpoints('a', 'b'));
    const now = Date.now();
    const lo = attachHealthChecks(router, {
      intervalMs: 1000,
      jitter: 0.2,
      random: () => 0,
      fetch: answering(200),
    });
    const hi = attachHealthChecks(router, {
      intervalMs: 1000,
      jitter: 0.2,
      random: () => 0.75,
      fetch: answering(200),
    });
    expect(lo.snapshot().a.nextCheckAt).toBe(now + 800);
    expect(hi.snapshot().b.nextCheckAt).toBe(now + 1100);
    lo.dispose();
    hi.dispose();
  });

  it('follows reloads, and skips busy endpoints with onlyWhenIdle', async () => {
    const router = createRouter(endpoints('a'));
    const fetch = vi.fn(answering(200));
    const health = attachHealthChecks(router, { intervalMs: 1000, jitter: 0, fetch, onlyWhenIdle: true });
    router.reload(endpoints('b'));
    expect(Object.keys(health.snapshot())).toEqual(['b']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(fetch.mock.calls.map((c) => c[0])).toEqual(['http://b.test/v1/models']);
    const hang = router.execute({}, () => new Promise(() => {}));
    void hang;
    await vi.advanceTimersByTimeAsync(3000);
    expect(fetch).toHaveBeenCalledTimes(1);
    health.dispose();
  });
});

describe('attachHealthChecks: outcomes', () => {
  it('a failing probe takes an idle endpoint out, not a busy one; 4xx and 429 are inconclusive', async () => {
    const router = createRouter({ ...endpoints('a', 'b'), maxWaitMs: 0 });
    let next = 500;
    const health = attachHealthChecks(router, {
      fetch: async () => new Response('', { status: next }),
      unhealthyMs: 7000,
    });
    const [ra] = await health.checkNow('a');
    expect(ra).toMatchObject({
      ok: false,
      kind: 'server',
      status: 500,
      action: 'marked-unhealthy',
      error: 'HTTP 500',
    });
    expect(router.getHealth('a')).toMatchObject({ status: 'unhealthy', until: Date.now() + 7000 });
    expect(router.getHealth('a')).toMatchObject({ reason: 'health probe failed: HTTP 500' });

    void router.execute({}, () => new Promise(() => {})); // keeps b busy
    expect(router.getStats('b')?.inFlight).toBe(1);
    const [rb] = await health.checkNow('b');
    expect(rb).toMatchObject({ ok: false, action: 'none' });
    expect(router.getHealth('b')?.status).toBe('healthy');

    const fresh = createRouter(endpoints('c'));
    const h2 = attachHealthChecks(fresh, { fetch: async () => new Response('', { status: next }) });
    for (const s of [404, 429]) {
      next = s;
      const [r] = await h2.checkNow('c');
      expect(r).toMatchObject({ ok: false, status: s, action: 'none' });
    }
    expect(fresh.getHealth('c')?.status).toBe('healthy');
  });

  it('a passing probe ends a retirement but not a 429 cooldown', async () => {
    const router = createRouter(endpoints('a', 'b'));
    const health = attachHealthChecks(router, { fetch: answering(200) });
    await router.execute({}, ({ endpoint }) =>
      Promise.resolve(
        endpoint.id === 'a' ? { status: 429, headers: { 'retry-after': '60' } } : { status: 200 },
      ),
    );
    expect(router.getHealth('a')?.status).toBe('cooling');
    expect((await health.checkNow('a'))[0].action).toBe('none');
    expect(router.getHealth('a')?.status).toBe('cooling');

    router.markUnhealthy('b', 'key rejected (401)');
    expect((await health.checkNow('b'))[0].action).toBe('recovered');
    expect(router.getHealth('b')?.status).toBe('healthy');

    router.setEndpointHealth('b', false);
    expect(await health.checkNow('b')).toEqual([]);
    await expect(health.checkNow('zzz')).rejects.toThrow('checkNow: unknown endpoint "zzz"');
  });

  it('a passing probe closes an open breaker without risking a user request', async () => {
    const router = createRouter(endpoints('a', 'b'));
    const breaker = attachBreaker(router, { threshold: 1, env: {} });
    const health = attachHealthChecks(router, { fetch: answering(200), breaker });
    await router.execute({}, ({ endpoint }) => Promise.resolve({ status: endpoint.id === 'a' ? 500 : 200 }));
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.state('a')).toBe('open');
    await health.checkNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(breaker.state('a')).toBe('closed');
    expect(router.getStats('a')?.requests).toBe(1);
  });

  it('times out hanging probes and masks keys in errors', async () => {
    const router = createRouter(endpoints('a', 'b'));
    const m = manualFetch();
    const health = attachHealthChecks(router, {
      fetch: m.fetch,
      timeoutMs: 500,
      headers: (ep): Record<string, string> =>
        ep.id === 'a' ? { 'x-probe': ep.id } : { authorization: '', 'api-key': 'k' },
    });
    const pending = health.checkNow('a');
    await vi.advanceTimersByTimeAsync(500);
    const [r] = await pending;
    expect(r).toMatchObject({ ok: false, kind: 'timeout', error: 'health probe timed out after 500 ms' });
    const headers = m.calls[0].init.headers as Record<string, string>;
    expect(headers).toEqual({ authorization: `Bearer ${fakeKey('a')}`, 'x-probe': 'a' });

    const key = fakeKey('b');
    const p2 = health.checkNow('b');
    m.calls[1].answer(
      Object.assign(new Error(`connect refused for ${key}`), { cause: { code: 'ECONNREFUSED' } }),
    );
    const [r2] = await p2;
    expect(m.calls[1].init.headers).toEqual({ 'api-key': 'k' });
    expect(r2.kind).toBe('network');
    expect(r2.error).toBe(`connect refused for ${maskKey(key)} (ECONNREFUSED)`);
    expect(JSON.stringify(health.snapshot())).not.toContain(key);
  });

  it('validates options, naming the received value', () => {
    const router = createRouter(endpoints('a'));
    expect(() => attachHealthChecks(router, { jitter: 2 })).toThrow(
      'healthChecks.jitter: expected a number in [0, 1], received 2',
    );
    expect(() => attachHealthChecks(router, { intervalMs: -1 })).toThrow(ConfigError);
    expect(() => attachHealthChecks(router, { env: { OPENAI_HEALTH_CHECK_INTERVAL: 'soon' } })).toThrow(
      'OPENAI_HEALTH_CHECK_INTERVAL: expected a number or a duration such as 30s, received "soon"',
    );
    // The probe timeout is HEALTH_CHECK_TIMEOUT, as @lb/config-env and lb-server name it (the old name still reads).
    expect(() => attachHealthChecks(router, { env: { HEALTH_CHECK_TIMEOUT: 'soon' } })).toThrow(
      'HEALTH_CHECK_TIMEOUT: expected a number or a duration such as 30s, received "soon"',
    );
    expect(() => attachHealthChecks(router, { env: { OPENAI_HEALTH_CHECK_TIMEOUT: '0' } })).toThrow(
      'OPENAI_HEALTH_CHECK_TIMEOUT: expected a value >= 1, received "0"',
    );
    expect(() => attachHealthChecks(router, { breaker: {} as never })).toThrow(/healthChecks.breaker/);
    expect(() => attachHealthChecks(router, { fetch: 'x' as never })).toThrow(/received "x"/);
  });
});
