import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { attachBreaker, attachHealthChecks } from '@lb/breaker';
import {
  type AttemptContext,
  type CircuitState,
  createRouter,
  type EndpointConfig,
  isNoHealthyEndpointError,
  type Router,
  type RouterEvents,
} from '@lb/core';
import { attachRateLimit } from '@lb/ratelimit';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import {
  type ClientRequestRecord,
  createObservability,
  type Observability,
} from '../src/observability/index.js';

const KEY_A = fakeKey('alpha');
const KEY_B = fakeKey('bravo');

/** Captures pino's JSON lines. */
function capture() {
  const lines: any[] = [];
  let buf = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      buf += chunk.toString();
      let i = buf.indexOf('\n');
      while (i !== -1) {
        lines.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
        i = buf.indexOf('\n');
      }
      cb();
    },
  });
  return { stream, lines, text: () => lines.map((l) => JSON.stringify(l)).join('\n') };
}

/** A real HTTP attempt against the endpoint, like the proxy makes. */
function chat(model = 'gpt-4o-mini') {
  return async (ctx: AttemptContext) => {
    const res = await fetch(`${ctx.endpoint.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ctx.endpoint.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: ctx.upstreamModel ?? model,
        messages: [{ role: 'user', content: 'secret prompt' }],
      }),
      signal: ctx.signal,
    });
    const body = (await res.json()) as any;
    if (res.ok && body.usage) ctx.reportUsage(body.usage);
    return { status: res.status, headers: res.headers, body };
  };
}

/** Reads one sample's value out of Prometheus text. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const p of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[p[1]] = p[2];
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

function record(over: Partial<ClientRequestRecord> = {}): ClientRequestRecord {
  return {
    requestId: 'req_1',
    client: '127.0.0.1',
    method: 'POST',
    path: '/v1/chat/completions',
    model: 'gpt-4o-mini',
    stream: false,
    status: 200,
    latencyMs: 42,
    ttfbMs: 40,
    endpointId: 'a',
    attempts: 1,
    ...over,
  };
}

describe('observability against real upstreams', () => {
  let upA: FakeUpstream;
  let upB: FakeUpstream;
  let router: Router;
  let obs: Observability;
  let logs: ReturnType<typeof capture>;

  beforeAll(async () => {
    upA = await startFakeUpstream({ name: 'alpha', acceptKeys: [KEY_A] });
    upB = await startFakeUpstream({ name: 'bravo', acceptKeys: [KEY_B] });
  });
  afterAll(async () => {
    await Promise.all([upA.close(), upB.close()]);
  });
  beforeEach(() => {
    const endpoints: EndpointConfig[] = [
      // Models are labels only when the config names them.
      { id: 'a', url: upA.url, apiKey: KEY_A, priority: 1, models: ['gpt-4o-mini'] },
      { id: 'b', url: upB.url, apiKey: KEY_B, priority: 2, models: ['gpt-4o-mini'] },
    ];
    router = createRouter({ endpoints, backoff: { initialMs: 1, maxMs: 1 } });
    logs = capture();
    obs = createObservability(router, {
      metricsEnabled: true,
      logLevel: 'info',
      requestLog: { enabled: false },
      logDestination: logs.stream,
      processMetrics: false,
      version: '1.2.3',
    });
  });
  afterEach(async () => {
    await obs.close();
  });

  it('counts attempts, failovers, errors, latency and tokens from the bus', async () => {
    upA.next({ type: 'status', status: 500 });
    const res = await router.execute({ model: 'gpt-4o-mini' }, chat());
    expect(res.status).toBe(200);
    const text = await obs.metricsText();
    expect(sample(text, 'lb_upstream_attempts_total', { endpoint: 'a', outcome: 'server' })).toBe(1);
    expect(sample(text, 'lb_upstream_attempts_total', { endpoint: 'b', outcome: 'success' })).toBe(1);
    expect(sample(text, 'lb_failovers_total', { from_endpoint: 'a', reason: 'server' })).toBe(1);
    expect(sample(text, 'lb_errors_total', { kind: 'server' })).toBe(1);
    expect(sample(text, 'lb_upstream_latency_seconds_count', { endpoint: 'b', model: 'gpt-4o-mini' })).toBe(
      1,
    );
    expect(
      sample(text, 'lb_upstream_latency_seconds_bucket', { endpoint: 'b', model: 'gpt-4o-mini', le: '+Inf' }),
    ).toBe(1);
    expect(sample(text, 'lb_tokens_total', { endpoint: 'b', model: 'gpt-4o-mini', type: 'total' })).toBe(21);
    expect(sample(text, 'lb_tokens_total', { endpoint: 'b', model: 'gpt-4o-mini', type: 'prompt' })).toBe(9);
    expect(sample(text, 'lb_endpoint_up', { endpoint: 'a' })).toBe(1);
    expect(sample(text, 'lb_endpoint_state', { endpoint: 'a', state: 'healthy' })).toBe(1);
    expect(sample(text, 'lb_endpoint_state', { endpoint: 'a', state: 'cooling' })).toBe(0);
    expect(sample(text, 'lb_endpoint_in_flight', { endpoint: 'b' })).toBe(0);
    expect(sample(text, 'lb_build_info', { version: '1.2.3' })).toBe(1);
    expect(obs.metricsContentType).toMatch(/^text\/plain/);
    // the failure is logged at warn, with the endpoint id and no key
    const warn = logs.lines.find((l) => l.msg === 'upstream attempt failed');
    expect(warn).toMatchObject({ level: 40, endpointId: 'a', kind: 'server', status: 500, failover: true });
    const stats = obs.stats();
    expect(stats.totals.attempts).toBe(2);
    expect(stats.totals.failovers).toBe(1);
    expect(stats.totals.errorsByKind).toEqual({ server: 1 });
    expect(stats.endpoints.b.tokens).toEqual({ prompt: 9, completion: 12, total: 21 });
    expect(stats.endpoints.a).toMatchObject({ attempts: 1, failures: 1, successRate: 0 });
    expect(stats.models['gpt-4o-mini'].tokens.total).toBe(21);
  });

  it('listens to request:done only while a failover awaits its next attempt', async () => {
    expect(router.listenerCount('request:done')).toBe(0);
    upA.next({ type: 'status', status: 500 });
    await router.execute({ model: 'gpt-4o-mini' }, chat());
    expect(router.listenerCount('request:done')).toBe(0); // counted at the next attempt, then forgotten
    // A failover whose request is cut before its next attempt (the caller aborts during the backoff).
    const slow = createRouter({
      endpoints: [{ id: 'a', url: upA.url, apiKey: KEY_A }],
      backoff: { initialMs: 5_000, maxMs: 5_000, jitter: 0 },
      maxRetries: 1,
    });
    const o = createObservability(slow, {
      metricsEnabled: true,
      logLevel: 'silent',
      requestLog: { enabled: false },
      processMetrics: false,
    });
    try {
      upA.next({ type: 'status', status: 500 });
      const ac = new AbortController();
      // The attempt failed (the observability's listener, attached first, has run): now in its 5 s backoff.
      const failed = new Promise<void>((r) => {
        const off = slow.on('attempt:failure', () => {
          off();
          r();
        });
      });
      const p = slow.execute({ model: 'gpt-4o-mini', signal: ac.signal }, chat()).catch((e) => e);
      await failed;
      expect(slow.listenerCount('request:done')).toBe(1); // waiting for its retry of a
      ac.abort();
      await p;
      // Given up on between two attempts: no event says so, the entry stays (bounded, and dropped after 10 min).
      await slow.execute({ model: 'gpt-4o-mini' }, chat());
      expect(slow.listenerCount('request:done')).toBe(1);
    } finally {
      await o.close();
    }
    expect(slow.listenerCount('request:done')).toBe(0);
  });

  it('never puts a key in metrics, health, stats or logs', async () => {
    upA.next({ type: 'status', status: 401 });
    await router.execute({ model: 'gpt-4o-mini' }, chat());
    const bad = { type: 'status' as const, status: 500, body: { error: { message: `bad key ${KEY_B}` } } };
    upB.next(bad, bad, bad, bad);
    await expect(router.execute({ model: 'gpt-4o-mini' }, chat())).rejects.toSatisfy(
      isNoHealthyEndpointError,
    );
    obs.logger.info({ headers: { authorization: `Bearer ${KEY_A}` }, apiKey: KEY_B }, 'redaction net');
    obs.logger.error({ err: new Error(`upstream echoed ${KEY_A}`) }, 'boom');
    const metrics = await obs.metricsText();
    expect(sample(metrics, 'lb_requests_exhausted_total', { model: 'gpt-4o-mini' })).toBe(1);
    expect(logs.lines.find((l) => l.msg === 'request failed on every endpoint')).toMatchObject({
      level: 40,
      status: 502,
    });
    const everything = [
      await obs.metricsText(),
      JSON.stringify(obs.health()),
      JSON.stringify(obs.stats()),
      logs.text(),
    ].join('\n');
    for (const key of [KEY_A, KEY_B]) {
      expect(everything).not.toContain(key);
      expect(everything).not.toContain(key.slice(8, 30));
    }
    expect(logs.lines.find((l) => l.msg === 'redaction net').headers.authorization).not.toContain('alpha');
    expect(logs.lines.find((l) => l.msg === 'boom').err.message).toContain('sk-proj...');
    // the masked form is what the health page shows
    expect(obs.health().body.endpoints[0].apiKey).toBe('sk-proj...N0IA');
  });

  it('classifies a connection reset as a network error and counts the failover', async () => {
    upA.next({ type: 'reset' });
    const res = await router.execute({ model: 'gpt-4o-mini' }, chat());
    expect(res.body.system_fingerprint).toBe('bravo');
    const text = await obs.metricsText();
    expect(sample(text, 'lb_upstream_attempts_total', { endpoint: 'a', outcome: 'network' })).toBe(1);
    expect(sample(text, 'lb_errors_total', { kind: 'network' })).toBe(1);
    expect(sample(text, 'lb_failovers_total', { from_endpoint: 'a', reason: 'network' })).toBe(1);
  });

  it('health: healthy, degraded after a retired key, unhealthy (503) when nothing can serve', async () => {
    const h0 = obs.health();
    expect(h0.httpStatus).toBe(200);
    expect(h0.body.status).toBe('healthy');
    expect(h0.body.summary).toMatchObject({
      total: 2,
      healthy: 2,
      available: 2,
      unhealthy: 0,
      successRate: 1,
    });
    expect(h0.body.version).toBe('1.2.3');

    upA.next({ type: 'status', status: 401 });
    await router.execute({ model: 'gpt-4o-mini' }, chat());
    const h1 = obs.health();
    expect(h1.httpStatus).toBe(200);
    expect(h1.body.status).toBe('degraded');
    expect(h1.body.summary).toMatchObject({ total: 2, healthy: 1, available: 1, unhealthy: 1 });
    const a = h1.body.endpoints.find((e) => e.id === 'a')!;
    expect(a).toMatchObject({ state: 'unhealthy', available: false, errors: 1, successRate: 0 });
    expect(a.errorsByKind).toEqual({ auth: 1 });
    expect(a.recoversInMs).toBeGreaterThan(0);
    expect(Date.parse(a.recoversAt!)).toBeGreaterThan(Date.now());
    expect(a.lastUsed).toBeDefined();
    const b = h1.body.endpoints.find((e) => e.id === 'b')!;
    expect(b).toMatchObject({ state: 'healthy', available: true, successes: 1, successRate: 1 });
    expect(b.latencyMs).toBeGreaterThan(0);
    expect(
      logs.lines.some(
        (l) => l.msg === 'endpoint state changed' && l.endpointId === 'a' && l.to === 'unhealthy',
      ),
    ).toBe(true);
    expect(
      sample(await obs.metricsText(), 'lb_endpoint_state_changes_total', {
        endpoint: 'a',
        state: 'unhealthy',
      }),
    ).toBe(1);

    router.setEndpointHealth('b', false);
    const h2 = obs.health();
    expect(h2.httpStatus).toBe(503);
    expect(h2.body.status).toBe('unhealthy');
    expect(h2.body.summary).toMatchObject({ available: 0, disabled: 1 });
    const text = await obs.metricsText();
    expect(sample(text, 'lb_endpoint_up', { endpoint: 'b' })).toBe(0);
    expect(sample(text, 'lb_endpoint_state', { endpoint: 'b', state: 'disabled' })).toBe(1);
  });

  it('a disabled endpoint alone does not make the service degraded', () => {
    router.setEndpointHealth('b', false);
    const h = obs.health();
    expect(h.body.status).toBe('healthy');
    expect(h.httpStatus).toBe(200);
  });

  it('recordRequest feeds client-level metrics and /stats', async () => {
    obs.recordRequest(record({ latencyMs: 30, ttfbMs: 10 }));
    obs.recordRequest(record({ requestId: 'req_2', stream: true, latencyMs: 900, ttfbMs: 20 }));
    obs.recordRequest(
      record({ requestId: 'req_3', status: 503, latencyMs: 5, ttfbMs: undefined, errorType: 'x' }),
    );
    obs.recordRequest(
      record({ requestId: 'req_4', status: 503, endpointId: 'ghost-not-configured', latencyMs: 5 }),
    );
    const text = await obs.metricsText();
    expect(sample(text, 'lb_requests_total', { model: 'gpt-4o-mini', status: '200', stream: 'false' })).toBe(
      1,
    );
    expect(sample(text, 'lb_requests_total', { model: 'gpt-4o-mini', status: '200', stream: 'true' })).toBe(
      1,
    );
    expect(sample(text, 'lb_requests_total', { model: 'gpt-4o-mini', status: '503', stream: 'false' })).toBe(
      2,
    );
    expect(
      sample(text, 'lb_request_duration_seconds_count', {
        endpoint: 'a',
        model: 'gpt-4o-mini',
        stream: 'false',
      }),
    ).toBe(2);
    expect(
      sample(text, 'lb_request_duration_seconds_count', {
        endpoint: 'none',
        model: 'gpt-4o-mini',
        stream: 'false',
      }),
    ).toBe(1);
    expect(text).not.toContain('ghost-not-configured');
    expect(
      sample(text, 'lb_request_duration_seconds_bucket', { model: 'gpt-4o-mini', stream: 'true', le: '0.5' }),
    ).toBe(0);
    expect(
      sample(text, 'lb_request_duration_seconds_bucket', { model: 'gpt-4o-mini', stream: 'true', le: '1' }),
    ).toBe(1);
    expect(
      sample(text, 'lb_request_duration_seconds_sum', { model: 'gpt-4o-mini', stream: 'true' }),
    ).toBeCloseTo(0.9);
    expect(
      sample(text, 'lb_time_to_first_byte_seconds_count', { model: 'gpt-4o-mini', stream: 'false' }),
    ).toBe(1);
    expect(
      sample(text, 'lb_time_to_first_byte_seconds_count', { model: 'gpt-4o-mini', stream: 'true' }),
    ).toBe(1);
    const s = obs.stats();
    expect(s.totals).toMatchObject({ requests: 4, errors: 2, streams: 1, byStatus: { 200: 2, 503: 2 } });
    expect(s.totals.successRate).toBe(0.5);
    expect(s.totals.latencyMs.p50).toBe(30);
    expect(s.totals.latencyMs.p99).toBe(900);
    expect(s.models['gpt-4o-mini']).toMatchObject({ requests: 4, errors: 2, streams: 1 });
  });

  it("lb_spend_usd_total sums each request's cost under its endpoint, model and key", async () => {
    const costs: [string | undefined, string | undefined, number | undefined][] = [
      ['a', undefined, 0.5],
      ['a', undefined, 0.25],
      ['a', 'team-a', 1],
      [undefined, undefined, 2],
      ['a', undefined, undefined],
      ['a', 'team-a', 0.125],
      [undefined, 'team-a', 4],
    ];
    for (const [endpointId, key, costUsd] of costs) obs.recordRequest(record({ endpointId, key, costUsd }));
    const text = await obs.metricsText();
    const spend = (endpoint: string, key: string) =>
      sample(text, 'lb_spend_usd_total', { endpoint, model: 'gpt-4o-mini', key });
    expect(spend('a', 'none')).toBe(0.75);
    expect(spend('a', 'team-a')).toBe(1.125);
    expect(spend('none', 'none')).toBe(2);
    expect(spend('none', 'team-a')).toBe(4);
  });

  it('keeps model labels bounded: names no endpoint serves become "other"', async () => {
    const r2 = createRouter({ endpoints: [{ id: 'only', url: upA.url, apiKey: KEY_A, models: ['gpt-4o'] }] });
    const o2 = createObservability(r2, { logDestination: capture().stream, processMetrics: false });
    for (let i = 0; i < 300; i++) o2.recordRequest(record({ model: `junk-${i}`, status: 404 }));
    o2.recordRequest(record({ model: 'gpt-4o', status: 503 }));
    const text = await o2.metricsText();
    expect(sample(text, 'lb_requests_total', { model: 'other', status: '404' })).toBe(300);
    expect(sample(text, 'lb_requests_total', { model: 'gpt-4o', status: '503' })).toBe(1);
    expect(text).not.toContain('junk-');
    await o2.close();
  });

  it('an endpoint serving every model: names it answered 2xx for are "other" all the same', async () => {
    const r2 = createRouter({ endpoints: [{ id: 'open', url: upA.url, apiKey: KEY_A }] });
    const o2 = createObservability(r2, { logDestination: capture().stream, processMetrics: false });
    const before = (await o2.metricsText()).length;
    for (let i = 0; i < 200; i++) {
      await r2.execute({ model: `made-up-${i}` }, chat());
      o2.recordRequest(record({ model: `made-up-${i}`, endpointId: 'open', status: 200 }));
    }
    const text = await o2.metricsText();
    expect(text).not.toContain('made-up-');
    expect(sample(text, 'lb_requests_total', { model: 'other', status: '200' })).toBe(200);
    // a few dozen cells, not 200 names' worth
    expect(text.length - before).toBeLessThan(20_000);
    await o2.close();
  });

  it('tracks held streams: in flight while open, a broken stream counts as an error', async () => {
    let finish!: (err?: unknown) => void;
    await router.execute({ model: 'gpt-4o-mini' }, async (ctx) => {
      finish = ctx.hold();
      return { status: 200 };
    });
    expect(sample(await obs.metricsText(), 'lb_endpoint_in_flight', { endpoint: 'a' })).toBe(1);
    finish(new Error('socket hang up'));
    const text = await obs.metricsText();
    expect(sample(text, 'lb_endpoint_in_flight', { endpoint: 'a' })).toBe(0);
    expect(sample(text, 'lb_errors_total', { kind: 'stream' })).toBe(1);
    expect(logs.lines.find((l) => l.msg === 'upstream stream broke')).toMatchObject({ endpointId: 'a' });
  });

  it('drops the series of endpoints removed by a reload', async () => {
    await router.execute({ model: 'gpt-4o-mini' }, chat());
    let text = await obs.metricsText();
    expect(sample(text, 'lb_upstream_attempts_total', { endpoint: 'a', outcome: 'success' })).toBe(1);
    router.reload({ endpoints: [{ id: 'b', url: upB.url, apiKey: KEY_B }] });
    text = await obs.metricsText();
    expect(sample(text, 'lb_upstream_attempts_total', { endpoint: 'a', outcome: 'success' })).toBeUndefined();
    expect(sample(text, 'lb_endpoint_up', { endpoint: 'a' })).toBeUndefined();
    expect(sample(text, 'lb_config_reloads_total')).toBe(1);
    expect(logs.lines.some((l) => l.msg === 'configuration reloaded' && l.removed[0] === 'a')).toBe(true);
  });

  it('close() unsubscribes from the router', async () => {
    await obs.close();
    await router.execute({ model: 'gpt-4o-mini' }, chat());
    expect(
      sample(await obs.metricsText(), 'lb_upstream_attempts_total', { endpoint: 'a', outcome: 'success' }),
    ).toBe(undefined);
    await obs.close(); // idempotent
  });
});

describe('routing debug logs', () => {
  const mk = (debug: string | undefined) => {
    const router = createRouter({ endpoints: [{ id: 'a', url: 'http://127.0.0.1:9/v1', apiKey: KEY_A }] });
    const logs = capture();
    const obs = createObservability(router, {
      logLevel: 'info',
      debug,
      logDestination: logs.stream,
      processMetrics: false,
    });
    return { router, logs, obs };
  };

  it.each(['lb:*', 'lb:routing', '*', 'express,lb:*'])(
    'DEBUG=%s logs routing decisions at debug',
    async (debug) => {
      const { router, logs, obs } = mk(debug);
      await router.execute({ model: 'm' }, async () => ({ status: 200 }));
      const msgs = logs.lines.map((l) => l.msg);
      expect(msgs).toEqual(expect.arrayContaining(['endpoint selected', 'attempt start', 'attempt success']));
      expect(logs.lines.find((l) => l.msg === 'endpoint selected')).toMatchObject({
        level: 20,
        ns: 'lb:routing',
        endpointId: 'a',
        strategy: 'priority',
      });
      // the base logger stays at info
      obs.logger.debug('not shown');
      expect(msgs).not.toContain('not shown');
      await obs.close();
    },
  );

  it.each([undefined, 'express:*', 'lb:*,-lb:routing'])('DEBUG=%s keeps routing quiet', async (debug) => {
    const { router, logs, obs } = mk(debug);
    await router.execute({ model: 'm' }, async () => ({ status: 200 }));
    expect(logs.lines).toEqual([]);
    await obs.close();
  });
});

describe('breaker, rate limiter and health checks (typed handles, one bus)', () => {
  it('feeds a real breaker, limiter and health checks into metrics and health', async () => {
    const upA = await startFakeUpstream({ name: 'alpha', acceptKeys: [KEY_A] });
    const upB = await startFakeUpstream({ name: 'bravo', acceptKeys: [KEY_B] });
    onTestFinished(() => Promise.all([upA.close(), upB.close()]).then(() => undefined));
    const router = createRouter({
      endpoints: [
        { id: 'a', url: upA.url, apiKey: KEY_A, limits: { rpm: 60, tpm: 10_000 } },
        { id: 'b', url: upB.url, apiKey: KEY_B },
      ],
    });
    const breaker = attachBreaker(router, { env: {} });
    const rateLimit = attachRateLimit(router);
    const healthChecks = attachHealthChecks(router, { env: {} });
    const obs = createObservability(router, {
      logDestination: capture().stream,
      processMetrics: false,
      breaker,
      rateLimit,
      healthChecks,
    });
    breaker.isolate('a', 'maintenance');
    const [probe] = await healthChecks.checkNow('b');
    expect(probe).toMatchObject({ endpointId: 'b', ok: true, status: 200 });
    const text = await obs.metricsText();
    expect(sample(text, 'lb_breaker_state', { endpoint: 'a' })).toBe(2);
    expect(sample(text, 'lb_breaker_state', { endpoint: 'b' })).toBe(0);
    expect(sample(text, 'lb_ratelimit_remaining', { endpoint: 'a', limit: 'rpm' })).toBe(60);
    expect(sample(text, 'lb_ratelimit_remaining', { endpoint: 'a', limit: 'tpm' })).toBe(10_000);
    expect(sample(text, 'lb_health_probe_seconds', { endpoint: 'b' })).toBeCloseTo(
      probe!.responseTime / 1000,
    );
    expect(sample(text, 'lb_endpoint_up', { endpoint: 'a' })).toBe(0);
    const h = obs.health();
    expect(h.body.status).toBe('degraded');
    expect(h.body.summary.breakersOpen).toBe(1);
    expect(h.body.endpoints[0]).toMatchObject({ id: 'a', breaker: 'isolated', available: false });
    expect(h.body.endpoints[1].probe).toEqual({
      ok: true,
      status: 200,
      responseTimeMs: probe!.responseTime,
      at: new Date(probe!.lastCheckAt).toISOString(),
    });
    expect(obs.stats().endpoints.a.rateLimit).toEqual({ rpm: 60, tpm: 10_000 });
    healthChecks.dispose();
    rateLimit.dispose();
    breaker.dispose();
    await obs.close();
  });

  it('counts an endpoint in a 429 cooldown as rate-limited, from the limiter snapshot (no reason text read)', async () => {
    const router = createRouter({
      endpoints: [
        { id: 'a', url: 'http://127.0.0.1:9/v1', apiKey: KEY_A, limits: { rpm: 60 }, priority: 1 },
        { id: 'b', url: 'http://127.0.0.1:9/v1', apiKey: KEY_B, priority: 2 },
      ],
    });
    const rateLimit = attachRateLimit(router, { cooldownMs: 60_000 });
    const obs = createObservability(router, {
      logDestination: capture().stream,
      processMetrics: false,
      rateLimit,
    });
    const changes: RouterEvents['guard:state'][] = [];
    const off = router.on('guard:state', (e) => changes.push(e));
    // 'a' (priority 1) answers 429: its cooldown begins and the request fails over to 'b'.
    await expect(
      router.execute({}, async ({ endpoint }) => ({ status: endpoint.id === 'a' ? 429 : 200 })),
    ).resolves.toEqual({ status: 200 });
    off();
    const cooling = changes.find((c) => c.endpointId === 'a');
    expect(cooling).toMatchObject({ kind: 'cooldown', guard: 'ratelimit', from: 'ready', to: 'cooling' });
    expect(obs.health().body.summary.rateLimited).toBe(1);
    expect(obs.stats().endpoints.a.rateLimit).toMatchObject({ rpm: expect.any(Number) });
    rateLimit.dispose();
    await obs.close();
  });

  it('a circuit opening reaches an observer through the router bus with its typed payload', async () => {
    const router = createRouter({
      endpoints: [{ id: 'a', url: 'http://127.0.0.1:9/v1', apiKey: KEY_A }],
      maxRetries: 0,
    });
    const breaker = attachBreaker(router, { threshold: 2, halfOpenAfterMs: 60_000, env: {} });
    const logs = capture();
    const obs = createObservability(router, { logDestination: logs.stream, processMetrics: false, breaker });
    const seen: RouterEvents['guard:state'][] = [];
    const off = router.on('guard:state', (e) => seen.push(e));
    for (let i = 0; i < 2; i++)
      await expect(router.execute({}, async () => ({ status: 500 }))).rejects.toThrow();
    off();
    expect(seen).toHaveLength(1);
    const e = seen[0]!;
    // The union narrows on `kind`: a circuit's states are CircuitState, with its failure count.
    if (e.kind !== 'circuit') throw new Error(`expected a circuit change, got ${e.kind}`);
    const to: CircuitState = e.to;
    expect({ guard: e.guard, endpointId: e.endpointId, from: e.from, to, failures: e.failures }).toEqual({
      guard: 'breaker',
      endpointId: 'a',
      from: 'closed',
      to: 'open',
      failures: 2,
    });
    expect(e.until).toBeGreaterThan(Date.now());
    await obs.close();
    expect(logs.lines.find((l) => l.msg === 'breaker open')).toMatchObject({ endpointId: 'a', to: 'open' });
    breaker.dispose();
  });

  it('shows a real @lb/breaker circuit opening', async () => {
    const router = createRouter({
      endpoints: [{ id: 'a', url: 'http://127.0.0.1:9/v1', apiKey: KEY_A }],
      maxRetries: 0,
    });
    const breaker = attachBreaker(router, { threshold: 2, halfOpenAfterMs: 60_000 });
    const obs = createObservability(router, {
      logDestination: capture().stream,
      processMetrics: false,
      breaker,
    });
    expect(sample(await obs.metricsText(), 'lb_breaker_state', { endpoint: 'a' })).toBe(0);
    for (let i = 0; i < 2; i++)
      await expect(router.execute({}, async () => ({ status: 500 }))).rejects.toThrow();
    expect(sample(await obs.metricsText(), 'lb_breaker_state', { endpoint: 'a' })).toBe(2);
    const h = obs.health();
    expect(h.httpStatus).toBe(503);
    expect(h.body.endpoints[0].breaker).toBe('open');
    expect(h.body.summary.breakersOpen).toBe(1);
    breaker.dispose();
    await obs.close();
  });

  it('a throwing handle snapshot never breaks /health or /metrics', async () => {
    const router = createRouter({ endpoints: [{ id: 'a', url: 'http://127.0.0.1:9/v1', apiKey: KEY_A }] });
    const bad = {
      snapshot: () => {
        throw new Error('nope');
      },
    };
    const obs = createObservability(router, {
      logDestination: capture().stream,
      processMetrics: false,
      breaker: bad,
      rateLimit: bad,
    });
    expect(obs.health().httpStatus).toBe(200);
    expect(sample(await obs.metricsText(), 'lb_endpoint_up', { endpoint: 'a' })).toBe(1);
    await obs.close();
  });
});

describe('request log', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lb-obs-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one JSON line per request, with no key, body or query', async () => {
    const router = createRouter({ endpoints: [{ id: 'a', url: 'http://127.0.0.1:9/v1', apiKey: KEY_A }] });
    const path = join(dir, 'nested', 'requests.jsonl');
    const obs = createObservability(router, {
      requestLog: { enabled: true, path },
      logDestination: capture().stream,
      processMetrics: false,
      now: () => Date.UTC(2025, 0, 2, 3, 4, 5),
    });
    obs.recordRequest(
      record({
        path: `/v1/chat/completions?api_key=${KEY_A}`,
        usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
        stream: true,
      }),
    );
    obs.recordRequest(
      record({ requestId: 'req_2', client: KEY_B, status: 429, errorType: 'rate_limit_error', attempts: 3 }),
    );
    await obs.close();
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(KEY_A);
    expect(text).not.toContain(KEY_B);
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toEqual({
      time: '2025-01-02T03:04:05.000Z',
      requestId: 'req_1',
      client: '127.0.0.1',
      method: 'POST',
      path: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      stream: true,
      endpoint: 'a',
      attempts: 1,
      status: 200,
      latencyMs: 42,
      ttfbMs: 40,
      promptTokens: 3,
      completionTokens: 4,
      totalTokens: 7,
    });
    expect(lines[1]).toMatchObject({
      requestId: 'req_2',
      client: 'sk-proj...N0IA',
      status: 429,
      attempts: 3,
    });
    expect(lines[1].errorType).toBe('rate_limit_error');
  });

  it('writes nothing when disabled, and nothing after close', async () => {
    const router = createRouter({ endpoints: [{ id: 'a', url: 'http://127.0.0.1:9/v1', apiKey: KEY_A }] });
    const path = join(dir, 'requests.jsonl');
    const obs = createObservability(router, {
      requestLog: { enabled: true, path },
      logDestination: capture().stream,
      processMetrics: false,
    });
    obs.recordRequest(record());
    await obs.close();
    obs.recordRequest(record({ requestId: 'late' }));
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(1);
    const off = createObservability(router, { requestLog: { enabled: false, path: join(dir, 'off.jsonl') } });
    off.recordRequest(record());
    await off.close();
    expect(() => readFileSync(join(dir, 'off.jsonl'))).toThrow();
  });
});

describe('options', () => {
  const router = createRouter({ endpoints: [{ id: 'a', url: 'http://127.0.0.1:9/v1', apiKey: KEY_A }] });

  it.each([
    [{ logLevel: 'loud' }, /logLevel must be one of .*received "loud"/],
    [{ metricsEnabled: 'yes' }, /metricsEnabled must be a boolean, received "yes"/],
    [{ requestLog: { enabled: 1 } }, /requestLog must be/],
    [{ requestLog: { enabled: true, path: '' } }, /requestLog.path must be a non-empty string, received ""/],
    [{ debug: 5 }, /debug must be a string, received number 5/],
    [{ breaker: {} }, /breaker must have a snapshot\(\) method/],
    [{ logDestination: {} }, /logDestination must be a writable stream/],
  ])('rejects %j', (opts, msg) => {
    expect(() => createObservability(router, opts as never)).toThrow(msg);
  });

  it('rejects something that is not a router', () => {
    expect(() => createObservability({} as never, {})).toThrow(/expected a router from @lb\/core/);
  });

  it('metricsEnabled: false serves no metrics but still answers health and stats', async () => {
    const obs = createObservability(router, { metricsEnabled: false, logDestination: capture().stream });
    obs.recordRequest(record());
    expect(await obs.metricsText()).toBe('');
    expect(obs.stats().totals.requests).toBe(1);
    expect(obs.health().body.status).toBe('healthy');
    await obs.close();
  });

  it('exposes process metrics by default', async () => {
    const obs = createObservability(router, { logDestination: capture().stream });
    const text = await obs.metricsText();
    expect(text).toContain('lb_process_cpu_seconds_total');
    expect(text).toContain('# TYPE lb_requests_total counter');
    await obs.close();
  });
});
