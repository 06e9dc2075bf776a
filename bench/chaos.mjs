#!/usr/bin/env node
// pnpm chaos: scripted faults against three local upstreams, through lb-server (or in-process: an @lb/core router
// driving fetch, or the openai SDK through @lb/openai-adapter).
//   node bench/chaos.mjs [--short] [--target=auto|lb-server|core|adapter] [--only=5xx-burst,flapping] [--seconds=N] [--out=DIR]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runChaos } from './lib/chaos.mjs';
import { runFleetOutage } from './lib/fleet.mjs';
import { layout } from './lib/harness.mjs';
import { ROOT } from './lib/proxy.mjs';
import { table } from './lib/stats.mjs';

const argv = process.argv.slice(2);
const value = (name, d) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? d;
const short = argv.includes('--short');
const out = value('out', join(ROOT, 'bench', 'results'));
const seconds = value('seconds');
mkdirSync(out, { recursive: true });

const only = value('only')?.split(',');
const scenarios = only?.filter((x) => x !== 'fleet');
const r = await runChaos({
  short,
  target: value('target', 'auto'),
  scenarios: only && scenarios.length === 0 ? [] : scenarios,
  ...(seconds ? { durationMs: Number(seconds) * 1000 } : {}),
  log: (s) => console.log(s),
});
// The fleet: lb-server replicas behind one client, with breakers per replica and shared over Redis.
if ((!only || only.includes('fleet')) && r.target === 'lb-server' && layout.redis) {
  console.log('  … fleet: an endpoint down under several replicas');
  r.fleet = await runFleetOutage({ durationMs: short ? 1500 : 5000, log: (s) => console.log(s) });
}
writeFileSync(join(out, short ? 'chaos-short.json' : 'chaos.json'), `${JSON.stringify(r, null, 2)}\n`);
console.log(
  `\n# Chaos (${r.target}${r.rows[0]?.breaker ? ' + breaker' : ''}; ${r.settings.durationMs / 1000} s per scenario at ${r.settings.rate} req/s; attempt timeout ${r.settings.timeoutMs} ms, deadline ${r.settings.deadlineMs} ms)`,
);
console.log(
  table(
    r.rows.map(({ about, target, breaker, failures, ...x }) => ({
      ...x,
      failures: JSON.stringify(failures),
    })),
  ),
);
if (r.fleet) {
  const f = r.fleet;
  console.log(
    `\n# Fleet: ${f.replicas} lb-server replicas, endpoint A down from the start (breaker threshold ${f.threshold}, open ${f.halfOpenAfterMs} ms; ${f.rate} req/s for ${f.durationMs / 1000} s, half to one replica, the rest evenly over the others)`,
  );
  console.log(table(f.rows));
}
const bad = r.rows.filter((x) => x.lost > 0 || x.overDeadline > 0);
if (bad.length)
  console.log(`\nlost requests or deadline overruns in: ${bad.map((x) => x.scenario).join(', ')}`);
