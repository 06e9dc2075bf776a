#!/usr/bin/env node
// pnpm chaos: scripted faults against three local upstreams, through lb-server (or an in-process @lb/core router).
//   node bench/chaos.mjs [--short] [--target=auto|lb-server|core] [--only=5xx-burst,flapping] [--seconds=N] [--out=DIR]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runChaos } from './lib/chaos.mjs';
import { ROOT } from './lib/proxy.mjs';
import { table } from './lib/stats.mjs';

const argv = process.argv.slice(2);
const value = (name, d) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? d;
const short = argv.includes('--short');
const out = value('out', join(ROOT, 'bench', 'results'));
const seconds = value('seconds');
mkdirSync(out, { recursive: true });

const r = await runChaos({
  short,
  target: value('target', 'auto'),
  scenarios: value('only')?.split(','),
  ...(seconds ? { durationMs: Number(seconds) * 1000 } : {}),
  log: (s) => console.log(s),
});
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
const bad = r.rows.filter((x) => x.lost > 0 || x.overDeadline > 0);
if (bad.length)
  console.log(`\nlost requests or deadline overruns in: ${bad.map((x) => x.scenario).join(', ')}`);
