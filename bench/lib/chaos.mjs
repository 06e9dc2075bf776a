// The chaos suite: three local fake upstreams with scripted faults, a client sending at a fixed rate through the
// system under test (lb-server in its own process; in-process, an @lb/core router driving fetch or the openai SDK
// through @lb/openai-adapter), and the
// figures users choose a gateway on: client-visible success, upstream attempts per request, requests lost, p99
// under faults, time to detect an outage and to recover.
import { existsSync } from 'node:fs';
import { createRouter } from '@lb/core';
import { Pool } from 'undici';
import { atRate, BODY, STREAM_BODY } from './harness.mjs';
import { SERVER_CLI, startLbServerWithConfig } from './proxy.mjs';
import { percentile, round } from './stats.mjs';
import { startUpstream } from './upstream.mjs';

/** A fault window: from 25% to 65% of the run. */
const W0 = 0.25;
const W1 = 0.65;
const inWindow = (f) => f >= W0 && f < W1;
const s500 = { type: 'status', status: 500 };

/**
 * Scenarios. `faults[i](f, t)` gives upstream i's behaviour at fraction `f` of the run (`t` ms since the start);
 * undefined answers normally. `window` is the fault's [from, to) as fractions (to = 1: lasts to the end).
 */
export const SCENARIOS = {
  '5xx-burst': {
    about: 'A answers 500 for 40% of the run',
    faults: [(f) => (inWindow(f) ? s500 : undefined)],
  },
  '429-retry-after': {
    about: 'A answers 429 with Retry-After: 1',
    faults: [(f) => (inWindow(f) ? { type: 'status', status: 429, retryAfter: 1 } : undefined)],
  },
  '429-no-retry-after': {
    about: 'A answers 429 without Retry-After',
    faults: [(f) => (inWindow(f) ? { type: 'status', status: 429 } : undefined)],
  },
  'slow-past-timeout': {
    about: 'A answers after 3x the attempt timeout',
    faults: [(f, _t, o) => (inWindow(f) ? { type: 'slow', delayMs: o.timeoutMs * 3 } : undefined)],
  },
  'connection-reset': {
    about: 'A resets every connection',
    faults: [(f) => (inWindow(f) ? { type: 'reset' } : undefined)],
  },
  'mid-stream-drop': {
    about: 'streams; A drops the connection after 2 chunks (after the first byte no gateway can fail over)',
    stream: true,
    faults: [(f) => (inWindow(f) ? { type: 'drop', afterChunks: 2 } : undefined)],
  },
  'mid-stream-error': {
    about: 'streams; A sends an error event after 2 chunks and ends the stream',
    stream: true,
    faults: [(f) => (inWindow(f) ? { type: 'error-event', afterChunks: 2 } : undefined)],
  },
  'key-revoked': {
    about: "A's key is revoked (401) from 30% of the run on",
    window: [0.3, 1],
    faults: [(f) => (f >= 0.3 ? { type: 'status', status: 401 } : undefined)],
  },
  flapping: {
    about: 'A flaps: down (503) and up in turns of 10% of the run',
    window: [0.1, 0.9],
    faults: [
      (f) =>
        f >= 0.1 && f < 0.9 && Math.floor(f * 10) % 2 === 1 ? { type: 'status', status: 503 } : undefined,
    ],
  },
  'two-down': {
    about: 'A and B answer 500; only C is healthy',
    faults: [(f) => (inWindow(f) ? s500 : undefined), (f) => (inWindow(f) ? s500 : undefined)],
  },
};

async function attachCoreExtras(router, opts) {
  // @lb/breaker, when built, makes the in-process target behave like lb-server (5xx trips the breaker).
  try {
    const { attachBreaker } = await import('@lb/breaker');
    const b = attachBreaker(router, { threshold: 5, halfOpenAfterMs: opts.halfOpenAfterMs });
    return { breaker: true, dispose: () => b.dispose?.() };
  } catch {
    return { breaker: false, dispose: () => {} };
  }
}

/** The router both in-process targets use (+ breaker, rate limiter): the settings lb-server gets from its config. */
async function chaosRouter(urls, opts) {
  const router = createRouter({
    endpoints: urls.map((url, i) => ({ id: 'ABC'[i], url, apiKey: `sk-chaos-${i}-0123456789abcdef` })),
    strategy: 'round-robin',
    timeoutMs: opts.timeoutMs,
    deadlineMs: opts.deadlineMs,
    maxRetries: 4,
    backoff: { initialMs: 50, maxMs: 500 },
    rateLimitCooldownMs: opts.halfOpenAfterMs,
  });
  return { router, extras: await attachCoreExtras(router, opts) };
}

/** The in-process target: an @lb/core router (+ breaker) driving fetch. */
async function coreTarget(urls, opts) {
  const { router, extras } = await chaosRouter(urls, opts);
  return {
    kind: 'core',
    breaker: extras.breaker,
    async send(stream) {
      const res = await router.execute(
        { model: 'gpt-4o-mini' },
        async ({ endpoint, signal, hold }) => {
          const r = await fetch(`${endpoint.url}/chat/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${endpoint.apiKey}` },
            body: stream ? STREAM_BODY : BODY,
            signal,
          });
          if (r.status !== 200) return r;
          if (!stream) {
            // Read the body inside the attempt: a connection broken mid-body fails over like any network error.
            const text = await r.text();
            return { status: 200, headers: r.headers, text };
          }
          const release = hold();
          return { status: 200, headers: r.headers, stream: r.body, release };
        },
        { discard: (r) => r.body?.cancel?.() },
      );
      if (res.status !== 200) return { status: res.status, broken: false };
      if (!stream) return { status: 200, broken: !res.text.includes('chat.completion') };
      let text = '';
      try {
        for await (const c of res.stream) text += Buffer.from(c).toString();
        res.release();
      } catch (e) {
        res.release(e);
      }
      return { status: 200, broken: !text.includes('[DONE]') };
    },
    close: async () => extras.dispose(),
  };
}

/**
 * The drop-in client: the `openai` SDK through `@lb/openai-adapter`, on the same router. Its streams get stream
 * probation as lb-server's do. A request the SDK raises on before a stream began fails with its status; a stream
 * that raises (or ends without a finish reason) after it began is a broken stream.
 */
async function adapterTarget(urls, opts) {
  const { router, extras } = await chaosRouter(urls, opts);
  const { createOpenAI } = await import('@lb/openai-adapter');
  const client = createOpenAI(router, { maxRetries: 0, timeout: opts.deadlineMs * 2 });
  const ask = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello' }] };
  return {
    kind: 'adapter',
    breaker: extras.breaker,
    async send(stream) {
      let began = false;
      let endpoint;
      try {
        if (!stream) {
          const r = await client.chat.completions.create(ask);
          return { status: 200, broken: r.object !== 'chat.completion' };
        }
        const { data: s, response } = await client.chat.completions
          .create({ ...ask, stream: true })
          .withResponse();
        began = true;
        endpoint = response.headers.get('x-lb-endpoint') ?? undefined;
        let finished = false;
        for await (const c of s) if (c.choices[0]?.finish_reason) finished = true;
        return { status: 200, broken: !finished, endpoint };
      } catch (e) {
        if (began) return { status: 200, broken: true, endpoint };
        return { status: typeof e?.status === 'number' ? e.status : 0, broken: false };
      }
    },
    close: async () => extras.dispose(),
  };
}

/** The lb-server target, configured by a JSON file (deadline and breaker timing are not in the env scheme). */
async function serverTarget(urls, opts) {
  const p = await startLbServerWithConfig({
    strategy: 'round-robin',
    max_retries: 4,
    timeout: opts.timeoutMs,
    deadline: opts.deadlineMs,
    backoff: { initial: 50, max: 500 },
    rate_limit_cooldown: opts.halfOpenAfterMs,
    breaker: { enabled: true, threshold: 5, half_open_after: opts.halfOpenAfterMs },
    health_check: { enabled: false },
    server: { timeout: opts.timeoutMs, log_level: 'warn', request_log: { enabled: false } },
    endpoints: urls.map((u, i) => ({
      name: 'ABC'[i],
      base_url: u,
      api_key: `sk-chaos-${i}-0123456789abcdef`,
    })),
  });
  const pool = new Pool(`http://127.0.0.1:${p.port}`, { connections: 256 });
  return {
    kind: 'lb-server',
    breaker: true,
    async send(stream) {
      const r = await pool.request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-chaos-client' },
        body: stream ? STREAM_BODY : BODY,
        headersTimeout: opts.deadlineMs * 2,
        bodyTimeout: opts.deadlineMs * 2,
      });
      const endpoint = r.headers['x-lb-endpoint'];
      let text = '';
      try {
        for await (const c of r.body) text += c;
      } catch {
        return { status: r.statusCode, broken: true, endpoint };
      }
      const broken =
        r.statusCode === 200 && (stream ? !text.includes('[DONE]') : !text.includes('chat.completion'));
      return { status: r.statusCode, broken, endpoint };
    },
    close: async () => {
      await pool.close();
      await p.stop();
    },
  };
}

/**
 * Breaks that reached a client although stream probation should have held them: a broken stream sent after an
 * earlier break of the same endpoint had reached its client, with no clean stream of that endpoint ending in between
 * (a clean end lifts probation). The gateway saw each break before its client did, so the count holds whatever the
 * machine's speed; `slackMs` only widens what counts as "in between" (the client sees a clean end a little after the
 * gateway). Needs each result's `endpoint` (`x-lb-endpoint`); null when none has one.
 */
export function breaksPastProbation(results, slackMs = 100) {
  const streams = results.filter((r) => r.endpoint !== undefined && r.endpoint !== null && r.status === 200);
  if (streams.length === 0) return null;
  let late = 0;
  for (const s of streams) {
    if (!s.broken) continue;
    let lastBreakEnd = -Infinity;
    for (const b of streams)
      if (b.broken && b.endpoint === s.endpoint && b.at + b.ms < s.at)
        lastBreakEnd = Math.max(lastBreakEnd, b.at + b.ms);
    if (lastBreakEnd === -Infinity) continue;
    const lifted = streams.some(
      (c) =>
        !c.broken && c.endpoint === s.endpoint && c.at + c.ms > lastBreakEnd && c.at + c.ms < s.at + slackMs,
    );
    if (!lifted) late++;
  }
  return late;
}

/** The first fault-answered request after which A stayed quiet for `quietMs`: the outage was detected there. */
function detectMs(log, from, to, quietMs) {
  const hits = log.filter((x) => x.at >= from && x.at < to);
  for (let i = 0; i < hits.length; i++) {
    const next = i + 1 < hits.length ? hits[i + 1].at : to;
    if (next - hits[i].at >= quietMs) return hits[i].at - from;
  }
  return null;
}

const startTarget = (urls, o) =>
  o.target === 'lb-server'
    ? serverTarget(urls, o)
    : o.target === 'adapter'
      ? adapterTarget(urls, o)
      : coreTarget(urls, o);

/** Sequential requests through a target before any fault: their 90th percentile, ms (the machine's pace now). */
async function measurePace(target, n = 20) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await target.send(false);
    ms.push(performance.now() - t);
  }
  return percentile(ms, 90);
}

/** The attempt timeout is at least this many plain requests long, so only a fault makes it fire. */
const TIMEOUT_IN_REQUESTS = 50;
/** The largest stretch of a short run on a slow machine. */
const MAX_PACE_SCALE = 10;

/**
 * A short run's settings stretched to the machine's pace (a loaded CI machine serves a plain request in tens of ms,
 * where 150 ms attempt timeouts fire on no fault): when `TIMEOUT_IN_REQUESTS` requests at `paceMs` exceed the attempt
 * timeout, every time setting grows by the same factor and the rate shrinks by it. The request count and the fault
 * window (fractions of the run) stay, and so does what a scenario asserts.
 */
export function scaleToPace(o, paceMs) {
  const scale = Math.min(MAX_PACE_SCALE, Math.max(1, (TIMEOUT_IN_REQUESTS * paceMs) / o.timeoutMs));
  const x = (v) => Math.round(v * scale);
  return {
    ...o,
    paceMs: round(paceMs, 2),
    scale: round(scale, 2),
    timeoutMs: x(o.timeoutMs),
    deadlineMs: x(o.deadlineMs),
    halfOpenAfterMs: x(o.halfOpenAfterMs),
    quietMs: x(o.quietMs),
    durationMs: x(o.durationMs),
    rate: o.rate / scale,
  };
}

/** Runs one scenario; returns its figures. A short run first stretches its settings to the machine's pace. */
export async function runScenario(name, settings) {
  const sc = SCENARIOS[name];
  if (!sc)
    throw new Error(`unknown scenario ${JSON.stringify(name)}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  let opts = settings;
  const clock = { t0: 0 };
  const ups = [];
  for (let i = 0; i < 3; i++) {
    const fault = sc.faults[i];
    ups.push(
      await startUpstream({
        name: 'ABC'[i],
        latencyMs: opts.latencyMs,
        chunks: 6,
        intervalMs: 5,
        record: true,
        behaviour: fault
          ? () => {
              if (clock.t0 === 0) return undefined;
              const t = Date.now() - clock.t0;
              return fault(t / opts.durationMs, t, opts);
            }
          : undefined,
      }),
    );
  }
  const urls = ups.map((u) => u.url);
  let target = await startTarget(urls, opts);
  // Warm the connections before the clock starts.
  for (let i = 0; i < 6; i++) await target.send(false);
  if (opts.short) {
    opts = scaleToPace(opts, await measurePace(target));
    if (opts.scale > 1) {
      await target.close();
      target = await startTarget(urls, opts);
      for (let i = 0; i < 6; i++) await target.send(false);
    }
  }
  const { durationMs, rate } = opts;
  for (const u of ups) {
    u.stats.log.length = 0;
  }
  const results = [];
  clock.t0 = Date.now();
  await atRate({ rate, durationMs, tickMs: 2 }, () => {
    const at = Date.now();
    return target.send(!!sc.stream).then(
      (r) => results.push({ at, ms: Date.now() - at, ok: r.status === 200 && !r.broken, ...r }),
      (e) => results.push({ at, ms: Date.now() - at, ok: false, status: e?.status ?? 0, broken: false }),
    );
  });
  await target.close();
  for (const u of ups) await u.close();

  const [w0, w1] = sc.window ?? [W0, W1];
  const from = clock.t0 + w0 * durationMs;
  const to = clock.t0 + w1 * durationMs;
  const okCount = results.filter((r) => r.ok).length;
  const broken = results.filter((r) => r.broken).length;
  const failed = results.length - okCount;
  const chatLog = (u) => u.stats.log.filter((x) => x.post);
  const attempts = ups.reduce((a, u) => a + chatLog(u).length, 0);
  const aLog = chatLog(ups[0]);
  // A window lasting to the end (`to` = 1) has no end: an attempt still arriving as the clock runs out is in it.
  const faultyHits = aLog.filter((x) => x.fault !== null && x.at >= from && (w1 >= 1 || x.at < to));
  const recovered = w1 < 1 ? aLog.find((x) => x.at >= to && x.fault === null) : undefined;
  const during = results.filter((r) => r.at >= from && r.at < to).map((r) => r.ms);
  const statuses = {};
  for (const r of results)
    if (!r.ok) statuses[r.broken ? 'broken' : r.status] = (statuses[r.broken ? 'broken' : r.status] ?? 0) + 1;
  return {
    scenario: name,
    about: sc.about,
    target: target.kind,
    breaker: target.breaker,
    // A short run's stretch to the machine's pace (1: as configured) and the pace it measured, ms.
    scale: opts.scale ?? 1,
    paceMs: opts.paceMs ?? null,
    timeoutMs: opts.timeoutMs,
    requests: results.length,
    ok: okCount,
    successPct: round((okCount / results.length) * 100, 2),
    // Every scenario keeps at least one endpoint able to serve, so every failure is a lost request, except a stream
    // broken after its first byte (no gateway can fail over once bytes reached the client).
    lost: failed - (sc.stream ? broken : 0),
    brokenStreams: sc.stream ? broken : 0,
    breaksPastProbation: sc.stream ? breaksPastProbation(results) : null,
    failures: statuses,
    attemptsPerRequest: round(attempts / results.length, 3),
    p50Ms: round(
      percentile(
        results.map((r) => r.ms),
        50,
      ),
    ),
    p99Ms: round(
      percentile(
        results.map((r) => r.ms),
        99,
      ),
    ),
    p99DuringFaultMs: round(percentile(during, 99)),
    maxMs: round(Math.max(...results.map((r) => r.ms))),
    overDeadline: results.filter((r) => r.ms > opts.deadlineMs + 250).length,
    faultyAttempts: faultyHits.length,
    detectMs: faultyHits.length ? detectMs(faultyHits, from, to, opts.quietMs) : null,
    recoverMs: w1 >= 1 ? null : recovered ? recovered.at - to : null,
  };
}

/** Default settings of the full and the short run. */
export function chaosSettings(short) {
  return short
    ? {
        durationMs: 2000,
        rate: 100,
        latencyMs: 2,
        timeoutMs: 150,
        deadlineMs: 3000,
        halfOpenAfterMs: 200,
        quietMs: 150,
      }
    : {
        durationMs: 90_000,
        rate: 50,
        latencyMs: 5,
        timeoutMs: 1000,
        deadlineMs: 10_000,
        halfOpenAfterMs: 3000,
        quietMs: 2000,
      };
}

/**
 * Runs scenarios in turn. `target`: 'lb-server' (when its dist exists), 'core' (the router driving fetch), 'adapter'
 * (the `openai` SDK through `@lb/openai-adapter`), or 'auto' (lb-server if built).
 * @param {{ short?: boolean, scenarios?: string[], target?: 'auto' | 'lb-server' | 'core' | 'adapter', log?: (s: string) => void } & Partial<ReturnType<typeof chaosSettings>>} [opts]
 */
export async function runChaos(opts = {}) {
  const settings = { ...chaosSettings(opts.short ?? false), ...opts };
  const want = opts.target ?? 'auto';
  const target = want === 'auto' ? (existsSync(SERVER_CLI) ? 'lb-server' : 'core') : want;
  const rows = [];
  for (const name of opts.scenarios ?? Object.keys(SCENARIOS)) {
    opts.log?.(`  … ${name} (${target}, ${settings.durationMs / 1000} s at ${settings.rate} req/s)`);
    rows.push(await runScenario(name, { ...settings, target }));
  }
  return {
    at: new Date().toISOString(),
    node: process.version,
    short: opts.short ?? false,
    target,
    settings,
    rows,
  };
}
