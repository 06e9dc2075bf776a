#!/usr/bin/env node
// What the dashboard and OpenTelemetry cost lb-server per request (issue 27's speed targets):
//   - nobody watching the dashboard: nothing (no bus subscription, no tap);
//   - 5 dashboards open at 1,000 req/s: CPU per request +≤ 5 %;
//   - OpenTelemetry absent: 0; the API present with no SDK (a no-op tracer): ≤ 2 µs per request.
// Each variant is a fresh lb-server process (one endpoint, pinned to its core as bench/lib/proxy.mjs does), driven by
// an open loop at --rate req/s; CPU per request = Δ(utime+stime) from /proc/<pid>/stat ÷ requests, over --seconds
// after --warm seconds of the same load. Variants are interleaved round by round; the table gives the medians.
// "OTel absent" runs with OTEL_SDK_DISABLED=true, which takes the very path of an uninstalled API (@lb/otel
// resolves nothing, nothing subscribes); in this monorepo the API is always installed (a devDependency).
//
//   node bench/dashboard-otel.mjs [--rounds=5] [--seconds=8] [--warm=2] [--rate=1000] [--dashboards=5]
//                                 [--before=<cli.js of another build>] [--micro] [--inproc]
// --before adds that build (nobody watching, OTel absent) as a row: the A/B of "nothing when nobody watches".
// --micro adds an in-process figure (alone with --rounds=0): router.execute() per call with and without createTracing (no-op tracer).
// --inproc measures only the dashboards, in one process (server, upstream, client): see inproc().
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, layout, openLoop, pinSelf, spawnNode } from './lib/harness.mjs';
import { lbEnv, ROOT, SERVER_CLI, startLbServer, UPSTREAM } from './lib/proxy.mjs';
import { median, procStat, round, sleep, table } from './lib/stats.mjs';

const arg = (name, def) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
};
const ROUNDS = Number(arg('rounds', 5));
const SECONDS = Number(arg('seconds', 8));
const WARM = Number(arg('warm', 2));
const RATE = Number(arg('rate', 1000));
const DASHBOARDS = Number(arg('dashboards', 5));
const BEFORE = arg('before', undefined);
const ADMIN = 'lb-bench-admin-key-0123456789';

/** Opens `n` dashboards' event streams and reads them; returns a closer and the bytes read. */
async function openDashboards(port, n) {
  const ctl = new AbortController();
  const stat = { bytes: 0, frames: 0 };
  const readers = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/dashboard/events`, {
      headers: { 'x-admin-key': ADMIN },
      signal: ctl.signal,
    });
    if (res.status !== 200) throw new Error(`dashboard stream: HTTP ${res.status}`);
    readers.push(
      (async () => {
        const reader = res.body.getReader();
        for (;;) {
          const r = await reader.read().catch(() => ({ done: true }));
          if (r.done) return;
          stat.bytes += r.value.length;
          stat.frames++;
        }
      })(),
    );
  }
  return {
    stat,
    close: async () => {
      ctl.abort();
      await Promise.all(readers);
    },
  };
}

const VARIANTS = [
  { name: 'OTel absent, nobody watching', env: { OTEL_SDK_DISABLED: 'true' } },
  {
    name: `OTel absent, ${DASHBOARDS} dashboards open`,
    env: { OTEL_SDK_DISABLED: 'true' },
    dashboards: DASHBOARDS,
  },
  {
    name: `OTel absent, ${DASHBOARDS} dashboards opened then closed`,
    env: { OTEL_SDK_DISABLED: 'true' },
    dashboards: DASHBOARDS,
    closeFirst: true,
  },
  { name: 'OTel API, no SDK (no-op tracer), nobody watching', env: {} },
];
if (BEFORE)
  VARIANTS.push({
    name: 'before (other build), nobody watching',
    env: { OTEL_SDK_DISABLED: 'true' },
    cli: BEFORE,
  });

async function measure(upstreamUrl, v) {
  const lb = v.cli
    ? await startWith(v.cli, upstreamUrl, v.env)
    : await startLbServer([upstreamUrl], { extraEnv: { LB_ADMIN_KEY: ADMIN, ...v.env } });
  const target = { url: `http://127.0.0.1:${lb.port}/v1` };
  let dash;
  try {
    if (v.dashboards) dash = await openDashboards(lb.port, v.dashboards);
    await openLoop(target, { rate: RATE, durationMs: WARM * 1000 });
    if (v.closeFirst) {
      await dash.close();
      dash = undefined;
      await sleep(300);
    }
    const before = procStat(lb.pid);
    const r = await openLoop(target, { rate: RATE, durationMs: SECONDS * 1000 });
    const after = procStat(lb.pid);
    const frames = dash?.stat.frames ?? 0;
    return {
      cpuUsPerReq: (after.cpuUs - before.cpuUs) / r.sent,
      p50Us: r.p50Us,
      p99Us: r.p99Us,
      errors: r.errors,
      framesPerDashboard: v.dashboards && !v.closeFirst ? Math.round(frames / v.dashboards) : 0,
    };
  } finally {
    await dash?.close();
    await lb.stop();
  }
}

/** lb-server from another build's CLI (startLbServer runs this build's). */
async function startWith(cli, upstreamUrl, env) {
  const port = await freePort();
  const p = await spawnNode(cli, ['--port', String(port)], {
    core: layout.serverCore,
    env: lbEnv([upstreamUrl], { LB_ADMIN_KEY: ADMIN, ...env }),
    readyUrl: `http://127.0.0.1:${port}/healthz`,
  });
  p.port = port;
  return p;
}

/** router.execute() per call, in this process, with and without tracing through a no-op tracer. */
async function micro() {
  const { createRouter } = await import(join(ROOT, 'packages/core/dist/index.js'));
  const { createTracing } = await import(join(ROOT, 'packages/otel/dist/index.js'));
  const attempt = async () => ({ status: 200 });
  const rows = [];
  const N = 200_000;
  const run = async (tracing) => {
    const router = createRouter({ endpoints: [{ id: 'a', url: 'http://127.0.0.1:9/v1', apiKey: 'sk-x' }] });
    // What lb-server's observability listens to anyway: events are built either way.
    const offs = [
      'attempt:start',
      'attempt:success',
      'attempt:failure',
      'attempt:usage',
      'request:done',
      'request:exhausted',
      'attempt:end',
    ].map((e) => router.on(e, () => {}));
    const t = tracing ? createTracing(router) : undefined;
    // lb-server's two hooks as well: the client's headers before routing, the attempt's into upstream headers.
    const incoming = { 'content-type': 'application/json' };
    const traced = async (ctx) => {
      t.inject(ctx.requestId, { 'content-type': 'application/json' });
      return { status: 200 };
    };
    let seq = 0;
    const once = async (n) => {
      for (let i = 0; i < n; i++) {
        const requestId = `r${++seq}`;
        if (t) {
          t.continueFrom(requestId, incoming, 'chat.completions');
          await router.execute({ model: 'gpt-4o-mini', requestId }, traced);
        } else await router.execute({ model: 'gpt-4o-mini', requestId }, attempt);
      }
    };
    await once(20_000);
    const c0 = process.cpuUsage();
    await once(N);
    const c = process.cpuUsage(c0);
    t?.dispose();
    for (const off of offs) off();
    return ((c.user + c.system) * 1000) / N;
  };
  const base = [];
  const traced = [];
  for (let r = 0; r < 5; r++) {
    base.push(await run(false));
    traced.push(await run(true));
  }
  rows.push({ case: 'router.execute, no tracing', nsPerCall: round(median(base), 0) });
  rows.push({
    case: 'router.execute, createTracing (no-op tracer) + both hooks',
    nsPerCall: round(median(traced), 0),
  });
  rows.push({ case: 'added by tracing', nsPerCall: round(median(traced) - median(base), 0) });
  return rows;
}

/**
 * The dashboard in one process: lb-server, the fake upstream and the client here, paced at --rate req/s; CPU of this
 * process per request with 0 and with --dashboards dashboards open, slices interleaved. All three parts share the
 * figure, so the difference (not the ratio) is the dashboard's.
 */
async function inproc() {
  process.env.OTEL_SDK_DISABLED = 'true';
  const { createServer } = await import(join(ROOT, 'packages/server/dist/index.js'));
  const { startUpstream } = await import('./lib/upstream.mjs');
  const { atRate } = await import('./lib/harness.mjs');
  const { Pool } = await import('undici');
  const up = await startUpstream();
  const server = createServer({
    router: { endpoints: [{ id: 'a', url: up.url, apiKey: 'sk-bench-0123456789abcdef' }] },
    server: { port: 0, adminKey: ADMIN, requestLog: { enabled: false }, logLevel: 'warn' },
    logDestination: { write: () => true },
  });
  const url = await server.listen();
  const port = Number(new URL(url).port);
  const pool = new Pool(url, { connections: 32 });
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
  const headers = { 'content-type': 'application/json' };
  const slice = async (ms) => {
    const c0 = process.cpuUsage();
    const sent = await atRate({ rate: RATE, durationMs: ms }, () =>
      pool
        .request({ method: 'POST', path: '/v1/chat/completions', headers, body })
        .then((r) => r.body.dump()),
    );
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / sent;
  };
  const off = [];
  const on = [];
  try {
    await slice(2000);
    for (let r = 0; r < ROUNDS * 2; r++) {
      off.push(await slice(SECONDS * 500));
      const d = await openDashboards(port, DASHBOARDS);
      on.push(await slice(SECONDS * 500));
      await d.close();
    }
  } finally {
    await pool.close();
    await server.close(100);
    await up.close?.();
  }
  return [
    {
      case: 'in-process, nobody watching',
      'CPU µs/req (all parts)': round(median(off)),
      slices: off.map((x) => round(x)).join(' '),
    },
    {
      case: `in-process, ${DASHBOARDS} dashboards open`,
      'CPU µs/req (all parts)': round(median(on)),
      slices: on.map((x) => round(x)).join(' '),
    },
    {
      case: 'added by the dashboards',
      'CPU µs/req (all parts)': round(median(on) - median(off)),
      slices: '',
    },
  ];
}

async function main() {
  if (process.argv.includes('--inproc')) {
    console.log(`in-process: ${RATE} req/s, ${ROUNDS * 2} interleaved pairs of ${SECONDS / 2} s slices`);
    console.log(table(await inproc()));
    return;
  }
  if (ROUNDS === 0) {
    // --rounds=0 --micro: the in-process tracer figure alone.
    console.log(table(await micro()));
    return;
  }
  if (!existsSync(SERVER_CLI)) throw new Error(`build lb-server first: ${SERVER_CLI} is missing`);
  const pinned = pinSelf();
  console.log(
    `lb-server on core ${layout.taskset ? layout.serverCore : '(unpinned)'}, load here${pinned ? ` on core ${layout.clientCore}` : ''}; ${RATE} req/s open loop, ${WARM} s warm + ${SECONDS} s measured, ${ROUNDS} rounds, variants interleaved`,
  );
  const upstream = await spawnNode(UPSTREAM, [], { core: layout.clientCore });
  const results = new Map(VARIANTS.map((v) => [v.name, []]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]);
      for (const v of order) {
        const m = await measure(`http://127.0.0.1:${upstream.port}/v1`, v);
        results.get(v.name).push(m);
        console.log(`  round ${r + 1}: ${v.name}: ${round(m.cpuUsPerReq)} µs/req`);
      }
    }
  } finally {
    await upstream.stop();
  }
  const base = median(results.get(VARIANTS[0].name).map((m) => m.cpuUsPerReq));
  const rows = VARIANTS.map((v) => {
    const ms = results.get(v.name);
    const cpu = median(ms.map((m) => m.cpuUsPerReq));
    return {
      variant: v.name,
      'CPU µs/req': round(cpu),
      'vs first': `${cpu >= base ? '+' : ''}${round(cpu - base)} µs (${cpu >= base ? '+' : ''}${round(((cpu - base) / base) * 100)} %)`,
      'rounds (µs/req)': ms.map((m) => round(m.cpuUsPerReq)).join(' '),
      'p50 / p99 ms': `${round(median(ms.map((m) => m.p50Us)) / 1000, 2)} / ${round(median(ms.map((m) => m.p99Us)) / 1000, 2)}`,
      errors: ms.reduce((s, m) => s + m.errors, 0),
      'frames/dashboard': median(ms.map((m) => m.framesPerDashboard)),
    };
  });
  console.log();
  console.log(table(rows));
  if (process.argv.includes('--micro')) {
    console.log();
    console.log(table(await micro()));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
