// Spend micro-benchmark: what virtual keys + budgets + cost add to one request in memory (target ≤ 5 µs), and what
// `costOf` and a `cheapest` pick cost alone (ns and bytes allocated). In process, no network.
//
//   node bench/spend.mjs [--n=200000] [--rounds=5]   (the CLI; this module measures)
//
// Per request, as lb-server will run it: the key lookup (SHA-256 of the presented key, one map read, a constant-time
// compare), the expiry and model checks, the budget admission with an estimate (three counters: USD today, USD this
// month, tokens today), the cost from the usage the provider returned, and the settlement. Bytes are
// `process.memoryUsage().heapUsed` deltas over slices (no --expose-gc), median of the rounds; time is this process's
// CPU time (user + system), so that a busy machine's other processes do not count.
import { createRouter } from '@lb/core';
import { Budgets, cheapest, createSpend, KeyRing, PriceTable, tokensOf } from '@lb/spend';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** CPU ns and bytes per call of `fn`, median over rounds (each round: a warm-up slice, then `n` calls). */
function measure(fn, n, rounds) {
  const ns = [];
  const bytes = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < Math.min(n, 20_000); i++) fn(i);
    const h0 = process.memoryUsage().heapUsed;
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn(i);
    const c1 = process.cpuUsage(c0);
    const h1 = process.memoryUsage().heapUsed;
    ns.push(((c1.user + c1.system) * 1000) / n);
    bytes.push(Math.max(0, h1 - h0) / n);
  }
  return { ns: Math.round(median(ns)), bytes: Math.round(median(bytes) * 10) / 10 };
}

/**
 * Runs every measurement; returns `{ what, ns, bytes }` rows.
 * @param {{ n?: number, rounds?: number }} [opts] calls per round (default 200,000) and rounds (default 5)
 */
export function runSpendBench({ n = 200_000, rounds = 5 } = {}) {
  const rows = [];
  const secrets = Array.from({ length: 100 }, (_, i) => `sk-lb-team-${i}-${'x'.repeat(32)}`);
  const ring = new KeyRing(
    secrets.map((key, i) => ({
      name: `team-${i}`,
      key,
      models: ['gpt-4o-mini', 'fast'],
      budgetUsdDay: 1e9,
      budgetUsdMonth: 1e9,
      budgetTokensDay: 1e12,
    })),
    { apiKeys: [`sk-legacy-${'y'.repeat(32)}`] },
  );
  const prices = new PriceTable();
  const budgets = new Budgets();
  const usage = {
    prompt_tokens: 1200,
    completion_tokens: 300,
    total_tokens: 1500,
    prompt_tokens_details: { cached_tokens: 1024 },
  };

  rows.push([
    'costOf (chat usage with cached tokens, dated model name)',
    measure(() => prices.costOf(usage, 'gpt-4o-mini-2024-07-18'), n, rounds),
  ]);
  rows.push([
    'key lookup (SHA-256, map read, constant-time compare)',
    measure((i) => ring.lookup(secrets[i % 100]), n, rounds),
  ]);
  rows.push([
    'key lookup + check + budget admit + costOf + settle (the whole request)',
    measure(
      (i) => {
        const k = ring.lookup(secrets[i % 100]);
        if (ring.check(k, 'gpt-4o-mini') !== undefined) throw new Error('refused');
        const estUsd = prices.costOf({ prompt_tokens: 1500 }, 'gpt-4o-mini');
        if (budgets.admit(k, estUsd, 1500) !== undefined) throw new Error('over budget');
        budgets.settle(k, estUsd, 1500, prices.costOf(usage, 'gpt-4o-mini'), tokensOf(usage));
      },
      n,
      rounds,
    ),
  ]);
  const spend = createSpend({
    keys: secrets.map((key, i) => ({
      name: `team-${i}`,
      key,
      budgetUsdDay: 1e9,
      budgetUsdMonth: 1e9,
      budgetTokensDay: 1e12,
    })),
  });
  rows.push([
    'the same through Spend: admit(secret, model, tokens) + settle(admission, usage, model)',
    measure(
      (i) => spend.settle(spend.admit(secrets[i % 100], 'gpt-4o-mini', 1500), usage, 'gpt-4o-mini'),
      n,
      rounds,
    ),
  ]);
  const noBudget = new KeyRing([], { apiKeys: secrets });
  rows.push([
    'the same for unnamed LB_API_KEYS keys (lookup only: no budget, no counter)',
    measure(
      (i) => {
        const k = noBudget.lookup(secrets[i % 100]);
        budgets.admit(k, 0, 0);
        budgets.settle(k, 0, 0, prices.costOf(usage, 'gpt-4o-mini'), tokensOf(usage));
      },
      n,
      rounds,
    ),
  ]);

  for (const size of [4, 64]) {
    const endpoints = Array.from({ length: size }, (_, i) => ({
      id: `ep-${i}`,
      url: `http://127.0.0.1:${10_000 + i}/v1`,
      ...(i % 3 === 0 ? { meta: { price: { input: 0.1 + i / 1000, output: 0.4 } } } : {}),
    }));
    const router = createRouter({ endpoints, strategy: cheapest({ prices }) });
    const req = { model: 'gpt-4o-mini' };
    rows.push([`router.pick, cheapest, ${size} endpoints`, measure(() => router.pick(req), n, rounds)]);
  }
  return rows.map(([what, r]) => ({ what, ...r }));
}
