#!/usr/bin/env node
// Black-box fuzzing of a live lb-server (build first): mutated raw HTTP/1.1 requests over loopback (methods, paths,
// headers, bodies, framing; cut short, oversized, never finished), an ordinary request every 2,000. Prints the
// outcomes, the RSS over the run, and whether the process stayed up and ordinary requests kept succeeding; writes
// fuzz.json (fuzz-short.json with --short).
//   node bench/fuzz.mjs [--short] [--count=100000] [--seconds=900] [--concurrency=16] [--seed=1] [--out=DIR]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runFuzz } from './lib/fuzz.mjs';
import { ROOT } from './lib/proxy.mjs';
import { table } from './lib/stats.mjs';

const argv = process.argv.slice(2);
const value = (name, d) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? d;
const short = argv.includes('--short');
const out = value('out', join(ROOT, 'bench', 'results'));
mkdirSync(out, { recursive: true });

const r = await runFuzz({
  count: Number(value('count', short ? 3_000 : 100_000)),
  maxSeconds: Number(value('seconds', short ? 120 : 900)),
  concurrency: Number(value('concurrency', 16)),
  checkEvery: short ? 500 : 2_000,
  seed: Number(value('seed', 1)),
  log: (s) => console.log(s),
});
writeFileSync(join(out, short ? 'fuzz-short.json' : 'fuzz.json'), `${JSON.stringify(r, null, 2)}\n`);
console.log(
  `\n# Fuzz: ${r.requests} mutated requests in ${r.seconds} s (${r.rps}/s, ${r.concurrency} at a time, seed ${r.seed})`,
);
console.log(
  table(
    Object.entries(r.outcomes)
      .sort((a, b) => b[1] - a[1])
      .map(([outcome, n]) => ({ outcome, requests: n })),
  ),
);
console.log(
  `\nprocess up: ${r.processUp}; ordinary requests ok ${r.ordinaryChecks.ok}, failed ${r.ordinaryChecks.failed}; final ordinary request ok: ${r.finalOrdinaryOk}`,
);
console.log(
  `RSS: start ${r.rssStartMB} MB, middle ${r.rssMidMB} MB, end ${r.rssEndMB} MB, max ${r.rssMaxMB} MB`,
);
if (!r.processUp || !r.finalOrdinaryOk || r.ordinaryChecks.failed > 0) process.exitCode = 1;
