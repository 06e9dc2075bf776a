#!/usr/bin/env node
// A/B of the rate limiter's hot path in two checkouts (each built): `router.pick` with `@lb/ratelimit` attached (the
// guard's admit) and `router.execute` of a trivial attempt (pick + acquire), memory store, rps + rpm budgets never
// reached on 3 endpoints. Interleaved rounds in one process, medians in ns.
//   node bench/ab-limiter.mjs <root A> <root B> [--rounds=10]     (e.g. a `git archive` of the commit before, built)
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

const argv = process.argv.slice(2);
const [rootA, rootB] = argv.filter((a) => !a.startsWith('--')).map((r) => resolve(r));
if (!rootA || !rootB) throw new Error('usage: node bench/ab-limiter.mjs <root A> <root B> [--rounds=10]');
const rounds = Number(argv.find((a) => a.startsWith('--rounds='))?.split('=')[1] ?? 10);

const make = (root) => {
  const req = createRequire(`${root}/packages/server/package.json`);
  const core = req('@lb/core');
  const endpoints = [1, 2, 3].map((i) => ({
    id: `e${i}`,
    url: `http://e${i}.test/v1`,
    apiKey: `sk-bench-${i}-0123456789abcdef`,
    limits: { rps: 1e9, rpm: 1e9 },
  }));
  const r = core.createRouter({ endpoints, strategy: 'round-robin' });
  req('@lb/ratelimit').attachRateLimit(r);
  return r;
};
const routers = { A: make(rootA), B: make(rootB) };
const ok = { status: 200, headers: {} };
const attempt = async () => ok;
const execute = async (r, n) => {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await r.execute({}, attempt);
  return Number(process.hrtime.bigint() - t0) / n;
};
const pick = (r, n) => {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) r.pick({});
  return Number(process.hrtime.bigint() - t0) / n;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const order = (i) => (i % 2 ? ['B', 'A'] : ['A', 'B']);

for (const k of ['A', 'B']) await execute(routers[k], 50_000);
const ex = { A: [], B: [] };
const pk = { A: [], B: [] };
for (let i = 0; i < rounds; i++) for (const k of order(i)) ex[k].push(await execute(routers[k], 200_000));
for (let i = 0; i < rounds; i++) for (const k of order(i)) pk[k].push(pick(routers[k], 2_000_000));
const row = (what, m) => ({
  what,
  A: Math.round(median(m.A) * 10) / 10,
  B: Math.round(median(m.B) * 10) / 10,
  rounds: `A ${m.A.map((x) => x.toFixed(0)).join(' ')} | B ${m.B.map((x) => x.toFixed(0)).join(' ')}`,
});
console.table([row('execute ns/request', ex), row('pick ns', pk)]);
