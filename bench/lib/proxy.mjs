// Proxy overhead: direct to the fake upstream, through the bare undici pass-through (the floor), through lb-server
// (three endpoints) and, where it installed, through @portkey-ai/gateway; all in one run against the same upstream.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  layout,
  maxRps,
  maxRpsRounds,
  oneInFlight,
  openLoop,
  pacedArgs,
  pinSelf,
  rotated,
  spawnNode,
  streaming,
} from './harness.mjs';
import { topSelf } from './profile.mjs';
import { median, pairedPercentileDiffCi, percentile, procStat, round, sleep } from './stats.mjs';

/** How long the full run lets the servers sit idle before reading their settled RSS. */
const SETTLE_MS = 15_000;
/** A second undici-bare process, measured beside the first at one in flight and for streams (an A/A control). */
export const CONTROL = 'undici-bare #2';
/** Pause between requests of the sparse one-in-flight measurement. */
const SPARSE_GAP_MS = 20;

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, '..', '..');
// LB_SERVER_CLI: another build of the CLI (e.g. a copy of dist/ taken before a change, for before/after runs).
export const SERVER_CLI = process.env.LB_SERVER_CLI ?? join(ROOT, 'packages', 'server', 'dist', 'cli.js');
export const PORTKEY =
  process.env.PORTKEY_GATEWAY ?? '/tmp/portkey/node_modules/@portkey-ai/gateway/build/start-server.js';
export const UPSTREAM = join(here, 'upstream.mjs');
const BARE = join(here, 'bare-proxy.mjs');

/**
 * Each proxy's one-in-flight latency and stream TTFT minus undici-bare's, in the same run. The control row (a second
 * bare process) shows how far two copies of one proxy land apart: differences within it are noise.
 */
export function againstBare({ oneInFlight = [], streaming = [] }) {
  const o = oneInFlight.find((x) => x.name === 'undici-bare');
  const st = streaming.find((x) => x.name === 'undici-bare');
  if (!o && !st) return [];
  // A long run measures one of the two; a full run both (rows from its one-in-flight measurement).
  return (o ? oneInFlight : streaming)
    .filter((x) => x.name !== 'direct' && x.name !== 'undici-bare')
    .map((r) => {
      const x = o && oneInFlight.find((z) => z.name === r.name);
      const y = st && streaming.find((z) => z.name === r.name);
      return {
        name: r.name,
        p50Us: x ? round(x.p50Us - o.p50Us) : null,
        p99Us: x ? round(x.p99Us - o.p99Us) : null,
        // Over every run's rounds together (the figures beside them are medians of the runs' own).
        p50CiUs: x ? ci(x.samples, o.samples, 50, 1000) : null,
        p99CiUs: x ? ci(x.samples, o.samples, 99, 1000) : null,
        ttftP50Us: y ? round(y.ttftP50Us - st.ttftP50Us) : null,
        ttftP99Us: y ? round(y.ttftP99Us - st.ttftP99Us) : null,
        // What the p99 difference could be, given how much one run of these streams can move it (95%).
        ttftP99CiUs: y ? ci(y.ttftSamples, st.ttftSamples, 99) : null,
        ttftP50CiUs: y ? ci(y.ttftSamples, st.ttftSamples, 50) : null,
      };
    });
}

const ci = (a, b, p, reps = 2000) => {
  const r = a && b ? pairedPercentileDiffCi(a, b, p, { reps }) : null;
  return r && [round(r[0], 0), round(r[1], 0)];
};

/** Env for lb-server with `urls.length` endpoints (OPENAI_API_KEY_N / OPENAI_BASE_URL_N). */
export function lbEnv(urls, extra = {}) {
  const env = {
    LOG_LEVEL: 'warn',
    OPENAI_HEALTH_CHECK_INTERVAL: '0',
    REQUEST_LOG_ENABLED: 'false',
    LB_STRATEGY: 'round-robin',
    ...extra,
  };
  urls.forEach((u, i) => {
    env[`OPENAI_API_KEY_${i + 1}`] = `sk-bench-endpoint-${i + 1}-0123456789abcdef`;
    env[`OPENAI_BASE_URL_${i + 1}`] = u;
  });
  return env;
}

export async function startLbServer(urls, { extraEnv, nodeArgs, args = [] } = {}) {
  const port = await freePort();
  const p = await spawnNode(SERVER_CLI, ['--port', String(port), ...args], {
    core: layout.serverCore,
    env: lbEnv(urls, extraEnv),
    nodeArgs,
    readyUrl: `http://127.0.0.1:${port}/healthz`,
  });
  p.port = port;
  return p;
}

/** lb-server configured by a JSON config file written from `config` (for settings the env scheme lacks). */
export function startLbServerWithConfig(config, opts = {}) {
  const file = join(mkdtempSync(join(tmpdir(), 'lb-bench-')), 'lb.json');
  writeFileSync(file, JSON.stringify(config));
  return startLbServer([], { ...opts, args: ['--config', file, ...(opts.args ?? [])] });
}

const pick = (rows, key) => median(rows.map((r) => r[key]));

/**
 * Starts undici-bare, its control copy and (`withServer`) lb-server with three endpoints in front of `upstreamUrl`,
 * in an order rotated by `rotate`; returns the targets, direct to the upstream first, in a fixed order.
 */
async function startProxies(start, upstreamUrl, { withServer, rotate = 0 }) {
  const origin = new URL(upstreamUrl).origin;
  const specs = [
    ['undici-bare', () => spawnNode(BARE, [origin], { core: layout.serverCore })],
    [CONTROL, () => spawnNode(BARE, [origin], { core: layout.serverCore })],
  ];
  if (withServer) specs.push(['lb-server', () => startLbServer([upstreamUrl, upstreamUrl, upstreamUrl])]);
  const ports = new Map();
  for (const [name, spawn] of rotated(specs, rotate)) ports.set(name, (await start(spawn())).port);
  return [
    { name: 'direct', url: upstreamUrl },
    ...specs.map(([name]) => ({ name, url: `http://127.0.0.1:${ports.get(name)}/v1` })),
  ];
}

/** Stream rows with their TTFT and gap over the first row's (direct); `ttftSamples` kept, non-enumerable. */
const addedOverDirect = (s) =>
  s.map((x) =>
    Object.defineProperty(
      {
        ...x,
        addedTtftP50Us: round(x.ttftP50Us - s[0].ttftP50Us),
        addedTtftP99Us: round(x.ttftP99Us - s[0].ttftP99Us),
        addedGapP50Us: round(x.gapP50Us - s[0].gapP50Us),
      },
      'ttftSamples',
      { value: x.ttftSamples },
    ),
  );

/**
 * The long runs: enough requests or streams to read a p99 gap over bare (`node bench/run.mjs --only=streams` or
 * `--only=one-in-flight`). 1,000 streams per target give a 95% interval 2–3 ms wide on the TTFT p99 gap, which
 * shrinks about as 1/√n. They run in `rounds` of fresh proxy processes, started in a rotating order: two copies of
 * one proxy can differ for the life of their processes (−80 µs of TTFT p50 in a 10,000-stream run), which more
 * requests through the same processes never average out. Each round's gaps over bare are kept (`rounds`) beside the
 * pooled figures (percentiles over every round's samples; round i's samples sit at the same indices for every
 * target, so pairs survive).
 */
const LONG = {
  streams: {
    upstreamArgs: pacedArgs(),
    n: 10_000,
    measure: (targets, n, o, r) =>
      streaming(targets, { n, warmup: o.warmup ?? 30, warmS: o.warmS ?? 4, warmRotate: r }).then(
        addedOverDirect,
      ),
    samples: 'ttftSamples',
    pool: (rounds, j, samples) => ({
      name: rounds[0][j].name,
      ttftP50Us: round(percentile(samples, 50)),
      ttftP99Us: round(percentile(samples, 99)),
      gapP50Us: round(median(rounds.map((r) => r[j].gapP50Us))),
      gapP99Us: round(median(rounds.map((r) => r[j].gapP99Us))),
    }),
    finish: addedOverDirect,
    gaps: (rows) => againstBare({ streaming: rows }),
    keep: ({ name, ttftP50Us, ttftP99Us }) => ({ name, ttftP50Us, ttftP99Us }),
  },
  'one-in-flight': {
    upstreamArgs: [],
    n: 100_000,
    measure: (targets, n, o) => oneInFlight(targets, { n, warmup: o.warmup ?? 300 }),
    samples: 'samples',
    pool: (rounds, j, samples) => ({
      name: rounds[0][j].name,
      p50Us: round(percentile(samples, 50)),
      p99Us: round(percentile(samples, 99)),
      statuses: sumStatuses(rounds.map((r) => r[j].statuses)),
    }),
    finish: (rows) =>
      rows.map((x) =>
        Object.defineProperty(
          { ...x, addedP50Us: round(x.p50Us - rows[0].p50Us), addedP99Us: round(x.p99Us - rows[0].p99Us) },
          'samples',
          { value: x.samples },
        ),
      ),
    gaps: (rows) => againstBare({ oneInFlight: rows }),
    keep: ({ name, p50Us, p99Us }) => ({ name, p50Us, p99Us }),
  },
};

const sumStatuses = (list) => {
  const out = {};
  for (const st of list) for (const [k, v] of Object.entries(st)) out[k] = (out[k] ?? 0) + v;
  return out;
};

/** @param {'streams' | 'one-in-flight'} kind */
export async function runLongBench(kind, opts = {}) {
  const spec = LONG[kind];
  if (!spec) throw new Error(`runLongBench: unknown kind ${JSON.stringify(kind)} (streams, one-in-flight)`);
  const n = opts.n ?? spec.n;
  const roundsN = Math.max(1, opts.rounds ?? 5);
  const log = opts.log ?? (() => {});
  const withServer = (opts.withServer ?? true) && existsSync(SERVER_CLI);
  const pinned = pinSelf();
  const upstream = await spawnNode(UPSTREAM, spec.upstreamArgs, { core: layout.clientCore });
  try {
    const perRound = [];
    for (let r = 0; r < roundsN; r++) {
      const procs = [];
      const start = async (p) => {
        const x = await p;
        procs.push(x);
        return x;
      };
      try {
        const targets = await startProxies(start, `http://127.0.0.1:${upstream.port}/v1`, {
          withServer,
          rotate: r,
        });
        perRound.push(await spec.measure(targets, Math.ceil(n / roundsN), opts, r));
      } finally {
        for (const p of procs.reverse()) await p.stop();
      }
      const gaps = spec.gaps(perRound[r]).map(spec.keep);
      log(`round ${r + 1}/${roundsN} over bare: ${gaps.map((g) => JSON.stringify(g)).join(', ')}`);
    }
    const pooled = spec.finish(
      perRound[0].map((_, j) => {
        const samples = perRound.flatMap((r) => r[j][spec.samples]);
        return Object.defineProperty(spec.pool(perRound, j, samples), spec.samples, { value: samples });
      }),
    );
    return {
      at: new Date().toISOString(),
      node: process.version,
      kind,
      n: perRound.length * perRound[0][0][spec.samples].length,
      rounds: perRound.map((rows) => spec.gaps(rows).map(spec.keep)),
      layout: { ...layout, pinnedClient: pinned },
      rows: pooled,
      againstBare: spec.gaps(pooled),
    };
  } finally {
    await upstream.stop();
  }
}

/**
 * Runs the proxy benchmark. `short`: a few hundred requests and 1–2 s loads (the smoke test); `withServer`: include
 * lb-server when its dist exists; `profile`: run lb-server's load under --cpu-prof and report its hottest functions.
 */
export async function runProxyBench(opts = {}) {
  const short = opts.short ?? false;
  const log = opts.log ?? (() => {});
  const repeats = opts.repeats ?? (short ? 1 : 3);
  const withServer = (opts.withServer ?? true) && existsSync(SERVER_CLI);
  const withPortkey = (opts.withPortkey ?? !short) && existsSync(PORTKEY);
  const pinned = pinSelf();
  const procs = [];
  const start = async (p) => {
    const x = await p;
    procs.push(x);
    return x;
  };
  const result = {
    at: new Date().toISOString(),
    node: process.version,
    short,
    layout: {
      ...layout,
      pinnedClient: pinned,
      note: layout.taskset
        ? `servers under test on core ${layout.serverCore}; upstreams, this harness and ${layout.wrk ? 'wrk' : 'autocannon'} on core ${layout.clientCore}`
        : 'no pinning (taskset missing or one core)',
    },
    targets: [],
    oneInFlight: [],
    oneInFlightSparse: [],
    openLoop: [],
    maxRps: [],
    streaming: [],
    againstBare: [],
    failover: null,
    breakerOpen: null,
    rss: [],
    profile: null,
  };
  try {
    const up = await start(spawnNode(UPSTREAM, [], { core: layout.clientCore }));
    const paced = await start(spawnNode(UPSTREAM, pacedArgs(), { core: layout.clientCore }));
    const upUrl = `http://127.0.0.1:${up.port}/v1`;
    const pacedUrl = `http://127.0.0.1:${paced.port}/v1`;
    const targets = [{ name: 'direct', url: upUrl, pid: up.pid }];
    const bare = await start(spawnNode(BARE, [`http://127.0.0.1:${up.port}`], { core: layout.serverCore }));
    targets.push({ name: 'undici-bare', url: `http://127.0.0.1:${bare.port}/v1`, pid: bare.pid });
    let lb;
    if (withServer) {
      lb = await start(startLbServer([upUrl, upUrl, upUrl]));
      targets.push({ name: 'lb-server', url: `http://127.0.0.1:${lb.port}/v1`, pid: lb.pid });
    }
    if (withPortkey) {
      try {
        const port = await freePort();
        const pk = await start(
          spawnNode(PORTKEY, [`--port=${port}`, '--headless'], {
            core: layout.serverCore,
            env: { NODE_ENV: 'production' },
            readyUrl: `http://127.0.0.1:${port}/v1/models`,
          }),
        );
        targets.push({
          name: 'portkey',
          url: `http://127.0.0.1:${port}/v1`,
          pid: pk.pid,
          headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': upUrl },
        });
      } catch (e) {
        log(`portkey did not start: ${e.message.slice(0, 200)}`);
      }
    }
    result.targets = targets.map((t) => ({ name: t.name, url: t.url }));
    for (const t of targets.slice(1)) {
      result.rss.push({
        name: t.name,
        idleMB: round(procStat(t.pid)?.rssMB),
        settledMB: null,
        steadyMB: null,
      });
    }
    // Idle once settled: V8's memory reducer runs a few seconds after a process goes quiet (full run only).
    if (!short) {
      await sleep(SETTLE_MS);
      for (const t of targets.slice(1)) {
        const rss = result.rss.find((x) => x.name === t.name);
        if (rss) rss.settledMB = round(procStat(t.pid)?.rssMB);
      }
    }

    // 1. one in flight, interleaved; with a second, identical bare process as an A/A control: how far apart two
    // copies of the same proxy land in this run is the noise floor for reading lb-server against bare.
    log('one request in flight, interleaved…');
    const n = short ? 100 : 2000;
    const control = await start(
      spawnNode(BARE, [`http://127.0.0.1:${up.port}`], { core: layout.serverCore }),
    );
    const withControl = [...targets, { name: CONTROL, url: `http://127.0.0.1:${control.port}/v1` }];
    const runs = [];
    for (let r = 0; r < repeats; r++)
      runs.push(await oneInFlight(withControl, { n, warmup: short ? 30 : 300 }));
    await control.stop();
    const direct1 = { p50: median(runs.map((x) => x[0].p50Us)), p99: median(runs.map((x) => x[0].p99Us)) };
    result.oneInFlight = withControl.map((t, j) => {
      const p50 = median(runs.map((x) => x[j].p50Us));
      const p99 = median(runs.map((x) => x[j].p99Us));
      // Every run's rounds, one after another: round i of every target stays at the same index.
      const samples = runs.flatMap((x) => x[j].samples);
      return Object.defineProperty(
        {
          name: t.name,
          p50Us: round(p50),
          p99Us: round(p99),
          addedP50Us: j === 0 ? 0 : round(p50 - direct1.p50),
          addedP99Us: j === 0 ? 0 : round(p99 - direct1.p99),
          statuses: runs[0][j].statuses,
        },
        'samples',
        { value: samples },
      );
    });

    // 1b. the same with the requests 20 ms apart: each meets the processes idle (sparse traffic).
    log('one request in flight, 20 ms apart…');
    const sparse = await oneInFlight(targets, {
      n: short ? 20 : 500,
      warmup: short ? 10 : 100,
      gapMs: SPARSE_GAP_MS,
    });
    result.oneInFlightSparse = sparse.map((x, j) => ({
      name: x.name,
      gapMs: SPARSE_GAP_MS,
      p50Us: x.p50Us,
      p99Us: x.p99Us,
      addedP50Us: j === 0 ? 0 : round(x.p50Us - sparse[0].p50Us),
      addedP99Us: j === 0 ? 0 : round(x.p99Us - sparse[0].p99Us),
      statuses: x.statuses,
    }));

    // 2. open loop at fixed rates.
    const rates = opts.rates ?? (short ? [100] : [500, 1000]);
    for (const rate of rates) {
      log(`open loop at ${rate} req/s…`);
      const base = await openLoop(targets[0], { rate, durationMs: short ? 500 : 5000 });
      for (const t of targets) {
        const r = t === targets[0] ? base : await openLoop(t, { rate, durationMs: short ? 500 : 5000 });
        result.openLoop.push({
          name: t.name,
          ...r,
          addedP50Us: round(r.p50Us - base.p50Us),
          addedP99Us: round(r.p99Us - base.p99Us),
        });
      }
    }

    // 3. max RPS at concurrency 32, CPU per request (fresh undici-bare and lb-server processes every round: see
    // `maxRpsRounds`).
    const fresh = {
      'undici-bare': async () => {
        const p = await start(spawnNode(BARE, [`http://127.0.0.1:${up.port}`], { core: layout.serverCore }));
        return { url: `http://127.0.0.1:${p.port}/v1`, pid: p.pid, proc: p };
      },
      'lb-server': async () => {
        const p = await start(startLbServer([upUrl, upUrl, upUrl]));
        return { url: `http://127.0.0.1:${p.port}/v1`, pid: p.pid, proc: p };
      },
    };
    const rounds = await maxRpsRounds(
      targets.map((t) => (fresh[t.name] ? { name: t.name, start: fresh[t.name] } : t)),
      { rounds: repeats, durationS: short ? 1 : 10, log },
    );
    for (const { name, runs: rs, steadyMB } of rounds) {
      result.maxRps.push({
        name,
        tool: rs[0].tool,
        rps: round(pick(rs, 'rps'), 0),
        cpuUsPerReq: round(pick(rs, 'cpuUsPerReq')),
        p50Us: round(pick(rs, 'p50Us')),
        p99Us: round(pick(rs, 'p99Us')),
        non2xx: rs.reduce((a, r) => a + (r.non2xx || 0), 0),
        runs: rs.map((r) => r.rps),
      });
      const rss = result.rss.find((x) => x.name === name);
      if (rss) rss.steadyMB = steadyMB;
    }
    const bareRps = result.maxRps.find((x) => x.name === 'undici-bare')?.rps;
    for (const m of result.maxRps) m.ofBare = bareRps ? round(m.rps / bareRps, 2) : null;

    // 4. streams: TTFT and inter-chunk gap (upstream paces 20 chunks 2 ms apart).
    log('streams…');
    const sTargets = await startProxies(start, pacedUrl, { withServer });
    result.streaming = addedOverDirect(
      await streaming(sTargets, {
        n: short ? 10 : 1000,
        warmup: short ? 3 : 30,
        warmS: short ? 0 : 4,
        // One set of processes can meet only one warm-up order, and the target warmed last reads fastest (see
        // `streaming`): the last target goes first. With lb-server the order is lb-server, direct, bare, the control:
        // the bias runs against lb-server, and the control's row shows its size in this run. The long runs rotate it.
        warmRotate: sTargets.length - 1,
      }),
    );

    result.againstBare = againstBare(result);

    // 5. failover cost and breaker-open fast fail (lb-server only).
    if (withServer) {
      log('failover and breaker-open…');
      const bad = await start(spawnNode(UPSTREAM, ['--status', '500'], { core: layout.clientCore }));
      const badUrl = `http://127.0.0.1:${bad.port}/v1`;
      const fo = await start(
        startLbServer([badUrl, upUrl], {
          extraEnv: { LB_STRATEGY: 'priority', OPENAI_PRIORITY_2: '2', OPENAI_CIRCUIT_BREAKER: 'false' },
        }),
      );
      const br = await start(
        startLbServer([badUrl], {
          extraEnv: {
            OPENAI_CIRCUIT_BREAKER: 'true',
            CIRCUIT_BREAKER_THRESHOLD: '2',
            CIRCUIT_BREAKER_TIMEOUT: '3600',
          },
        }),
      );
      const lbT = { name: 'lb-server', url: `http://127.0.0.1:${lb.port}/v1` };
      const foT = { name: 'lb-server 1st endpoint 500', url: `http://127.0.0.1:${fo.port}/v1` };
      const brT = { name: 'lb-server breaker open', url: `http://127.0.0.1:${br.port}/v1` };
      const r = await oneInFlight([lbT, foT, brT], { n: short ? 100 : 1000, warmup: short ? 20 : 100 });
      result.failover = {
        ...r[1],
        addedP50Us: round(r[1].p50Us - r[0].p50Us),
        addedP99Us: round(r[1].p99Us - r[0].p99Us),
        baseline: r[0],
      };
      result.breakerOpen = { ...r[2], vsNormalP50Us: round(r[2].p50Us - r[0].p50Us) };
    }

    // 6. profile lb-server under load.
    if (withServer && opts.profile) {
      log('profiling lb-server under load…');
      const dir = join(ROOT, 'bench', 'results', 'prof');
      mkdirSync(dir, { recursive: true });
      const before = new Set(readdirSync(dir));
      const prof = await startLbServer([upUrl, upUrl, upUrl], {
        nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
      });
      await maxRps(
        { url: `http://127.0.0.1:${prof.port}/v1` },
        { connections: 32, durationS: short ? 2 : 10 },
      );
      await prof.stop();
      await sleep(200);
      const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.cpuprofile'));
      if (file)
        result.profile = { file: join('bench/results/prof', file), top: topSelf(join(dir, file), 20) };
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
  return result;
}
