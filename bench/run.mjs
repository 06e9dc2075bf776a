#!/usr/bin/env node
// pnpm bench: the selector benchmark (in this process) and the proxy benchmark (servers in their own processes).
//   node bench/run.mjs [--short] [--only=selector|proxy|soak|redis|redis-outage|stages] [--out=DIR] [--profile] [--no-server] [--no-portkey]
//   node bench/run.mjs --only=stages [--n=3000] [--chunks=20 --interval=2]   (not part of a full run: where a stream's
//     first byte spends its time; --chunks=1 --interval=0 sends streams back to back, every process warm)
//   node bench/run.mjs --only=streams|one-in-flight [--n=N] [--rounds=5]  (not part of a full run: one measurement, long enough for a p99)
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { layout, STREAM_SHAPE } from './lib/harness.mjs';
import { CONTROL, ROOT, runLongBench, runProxyBench, SERVER_CLI } from './lib/proxy.mjs';
import { runDegradedSwitch, runRedisCost, runRedisOneInFlight } from './lib/redis-cost.mjs';
import { runRedisOutage } from './lib/redis-outage.mjs';
import { MODE_TITLES, MODES, runSelectorBench } from './lib/selector.mjs';
import { runSoak } from './lib/soak.mjs';
import { runStages } from './lib/stages.mjs';
import { table } from './lib/stats.mjs';

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const value = (name, d) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? d;
const short = flag('short');
const only = value('only');
const out = value('out', join(ROOT, 'bench', 'results'));
const log = (s) => console.log(s);
const interval = (ci) => (ci ? ci.join(' … ') : '-');
/** Every proxy minus undici-bare, its control copy's row being the noise floor; `only`: the columns of one measurement. */
const logAgainstBare = (rows, only) => {
  log(`\n## Against undici-bare, with ${CONTROL} (a second copy of it) as the noise floor (µs)`);
  log(
    table(
      rows.map((x) => ({
        name: x.name,
        ...(only === 'streams'
          ? {}
          : {
              p50Us: x.p50Us,
              p99Us: x.p99Us,
              'p50 95% CI': interval(x.p50CiUs),
              'p99 95% CI': interval(x.p99CiUs),
            }),
        ...(only === 'one-in-flight'
          ? {}
          : {
              ttftP50Us: x.ttftP50Us,
              ttftP99Us: x.ttftP99Us,
              'ttftP50 95% CI': interval(x.ttftP50CiUs),
              'ttftP99 95% CI': interval(x.ttftP99CiUs),
            }),
      })),
    ),
  );
};
mkdirSync(out, { recursive: true });

if (!only || only === 'selector') {
  log(`\n# Selector: router.pick (ns and bytes per pick)${short ? ' — short' : ''}`);
  const rows = await runSelectorBench(
    short ? { sizes: [1, 64], timeMs: 50, slices: 7, log: () => {} } : { log: () => {} },
  );
  const json = { at: new Date().toISOString(), node: process.version, short, rows };
  writeFileSync(
    join(out, short ? 'selector-short.json' : 'selector.json'),
    `${JSON.stringify(json, null, 2)}\n`,
  );
  for (const mode of MODES) {
    const sizes = [...new Set(rows.map((r) => r.endpoints))];
    const pivot = [...new Set(rows.map((r) => r.strategy))].map((strategy) => {
      const row = { strategy };
      for (const n of sizes) {
        const r = rows.find((x) => x.strategy === strategy && x.endpoints === n && x.mode === mode);
        if (r) row[`${n} ep`] = `${r.nsPerPick} ns ${r.bytesPerPick} B`;
      }
      return row;
    });
    log(`\n## ${MODE_TITLES[mode]}`);
    log(table(pivot));
  }
}

if (!only || only === 'proxy') {
  log(
    `\n# Proxy overhead (${layout.cores} cores; wrk: ${layout.wrk}; taskset: ${layout.taskset})${short ? ' — short' : ''}`,
  );
  const r = await runProxyBench({
    short,
    profile: flag('profile'),
    withServer: !flag('no-server'),
    withPortkey: flag('no-portkey') ? false : undefined,
    log: (s) => log(`  … ${s}`),
  });
  writeFileSync(join(out, short ? 'proxy-short.json' : 'proxy.json'), `${JSON.stringify(r, null, 2)}\n`);
  log(`layout: ${r.layout.note}`);
  log('\n## One request in flight (µs, interleaved, median of runs)');
  log(table(r.oneInFlight.map(({ statuses, ...x }) => x)));
  log('\n## One request in flight, 20 ms apart (sparse traffic: idle, cold processes; µs, interleaved)');
  log(table(r.oneInFlightSparse.map(({ statuses, ...x }) => x)));
  log('\n## Open loop, fixed rate (µs from scheduled send)');
  log(table(r.openLoop));
  log('\n## Max throughput at concurrency 32');
  log(table(r.maxRps.map(({ runs, ...x }) => x)));
  log('\n## Streams: 20 chunks 2 ms apart (µs)');
  log(table(r.streaming));
  logAgainstBare(r.againstBare);
  if (r.failover) {
    log('\n## Failover (1st endpoint answers 500, 2nd succeeds) and breaker-open fast fail (µs)');
    log(
      table(
        [r.failover, r.breakerOpen].map(({ statuses, baseline, ...x }) => ({
          ...x,
          statuses: JSON.stringify(statuses),
        })),
      ),
    );
  }
  log('\n## RSS (MB)');
  log(table(r.rss));
  if (r.profile) {
    log(`\n## lb-server --cpu-prof under load: top self time (${r.profile.file})`);
    log(table(r.profile.top));
  }
}

// Opt-in, long enough to read a p99 gap over bare (≈ 35 min for 10,000 streams per target, ≈ 8 min for 100,000
// requests one in flight), in rounds of fresh proxies.
if (only === 'streams' || only === 'one-in-flight') {
  const streams = only === 'streams';
  const n = Number(value('n', short ? 40 : streams ? 10_000 : 100_000));
  log(
    streams
      ? `\n# Streams: ${n} per target, one at a time, interleaved, in rounds of fresh proxies; 20 chunks 2 ms apart (µs)`
      : `\n# One request in flight: ${n} per target, interleaved, in rounds of fresh proxies (µs)`,
  );
  const r = await runLongBench(only, {
    n,
    rounds: Number(value('rounds', short ? 2 : 5)),
    ...(short ? { warmup: 5, warmS: 0 } : {}),
    withServer: !flag('no-server'),
    log: (s) => log(`  … ${s}`),
  });
  writeFileSync(join(out, `${only}${short ? '-short' : ''}.json`), `${JSON.stringify(r, null, 2)}\n`);
  log(table(r.rows.map(({ statuses, ...x }) => x)));
  logAgainstBare(r.againstBare, streams ? 'streams' : 'one-in-flight');
}

if ((!only || only === 'soak') && !flag('no-server')) {
  if (!existsSync(SERVER_CLI)) throw new Error(`${SERVER_CLI} is missing: build first (pnpm build)`);
  log(`\n# Soak: lb-server, RSS over ${short ? 'a short run' : '200k requests'} (plain, streams, failovers)`);
  const r = await runSoak(short ? { requests: 2_000, settleMs: 500 } : { log: (s) => log(`  … ${s}`) });
  writeFileSync(join(out, short ? 'soak-short.json' : 'soak.json'), `${JSON.stringify(r, null, 2)}\n`);
  const { slices, ...summary } = r;
  log(table([summary]));
  log(table(slices));
}

// Needs Debian's redis-server (installed by .ci/run); left out of a run without it, and of --short.
if (only === 'redis' || (!only && !short && !flag('no-server') && layout.redis)) {
  log('\n# Rate-limit state in Redis: what sharing it costs lb-server (c=32)');
  const rows = await runRedisCost({ log: (s) => log(`  … ${s}`) });
  writeFileSync(
    join(out, 'redis.json'),
    `${JSON.stringify({ at: new Date().toISOString(), rows }, null, 2)}\n`,
  );
  log(table(rows));
  log('\n# Rate-limit state in Redis: admission at one request in flight (2,000 interleaved, µs)');
  const one = await runRedisOneInFlight({ n: short ? 200 : 2000 });
  log(table(one));
  log(
    '\n# Rate-limit state in Redis: switching to the degraded share and back (ms from the signal to /health)',
  );
  const sw = await runDegradedSwitch({ rounds: short ? 1 : 5, log: (s) => log(`  … ${s}`) });
  log(table(sw));
  writeFileSync(
    join(out, 'redis.json'),
    `${JSON.stringify({ at: new Date().toISOString(), rows, oneInFlight: one, degradedSwitch: sw }, null, 2)}\n`,
  );
}

// Opt-in (≈ 45 s): issue 24's scenario at full length, three lb-server processes on one Redis; LB_SERVER_CLI runs
// it against another build (a before/after).
if (only === 'redis-outage') {
  log('\n# Redis killed 8 s and stopped 6 s under three replicas at 45 req/s, one endpoint at 10 req/s');
  const rows = await runRedisOutage({ log: (s) => log(`  … ${s}`) });
  writeFileSync(
    join(out, 'redis-outage.json'),
    `${JSON.stringify({ at: new Date().toISOString(), rows }, null, 2)}\n`,
  );
  log(table(rows));
}

// Opt-in (minutes at the default 1,000 streams per target): the stages of a stream's time to first byte.
if (only === 'stages') {
  const n = Number(value('n', short ? 40 : 1000));
  const chunks = Number(value('chunks', STREAM_SHAPE.chunks));
  const intervalMs = Number(value('interval', STREAM_SHAPE.intervalMs));
  log(
    `\n# Stream TTFT by stage: ${n} streams per target of ${chunks} chunks ${intervalMs} ms apart, one at a time, interleaved (µs)`,
  );
  const r = await runStages({ n, warmup: short ? 5 : 30, chunks, intervalMs, log: (s) => log(`  … ${s}`) });
  writeFileSync(join(out, short ? 'stages-short.json' : 'stages.json'), `${JSON.stringify(r, null, 2)}\n`);
  log(table(r.rows.map(({ stages, slowest, slowestInGc, slowestGcMeanUs, ...x }) => x)));
  const proxies = r.rows.filter((x) => x.stages);
  const byStage = (key, pick) =>
    proxies[0][key].map((s, i) => {
      const row = { stage: s.stage };
      for (const p of proxies) Object.assign(row, pick(p.name, p[key][i]));
      return row;
    });
  log('\n## Each stage, p50 / p99');
  log(table(byStage('stages', (name, s) => ({ [`${name} p50`]: s.p50Us, [`${name} p99`]: s.p99Us }))));
  log('\n## The slowest 1% (arrival → first byte out): median of each stage');
  log(table(byStage('slowest', (name, s) => ({ [name]: s.medianUs }))));
  for (const p of proxies)
    log(
      `${p.name}: ${p.slowestInGc} of its slowest ${p.slowest.length ? Math.ceil(p.joined / 100) : 0} overlapped one of its own garbage collections (mean ${p.slowestGcMeanUs} µs of GC each); ${p.inGc} of all ${p.joined} did; ${p.gcs} collections in all`,
    );
}
