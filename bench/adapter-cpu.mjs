#!/usr/bin/env node
// CPU per call of `LoadBalancedOpenAI` (@lb/openai-adapter, on the exchange engine) against the plain `openai` SDK,
// both in this process against the same local upstream (bench/lib/upstream.mjs, its own process). Rounds alternate
// which client goes first; CPU is this process's user+sys (process.cpuUsage) over a fixed number of calls, so the
// upstream's work is not counted. Target (perf-targets.md): the adapter ≤ 1.05 × the plain SDK.
//
//   node bench/adapter-cpu.mjs [--calls=3000] [--rounds=5] [--concurrency=8] [--stream] [--before=<checkout>]
//
// `--before=<checkout>`: also measures the adapter of another built checkout (its packages/core and
// packages/openai-adapter dist), interleaved in the same rounds: an A/B of the adapter against the build before.
import { createRouter } from '@lb/core';
import { createOpenAI } from '@lb/openai-adapter';
import OpenAI from 'openai';
import { layout, pinSelf, spawnNode } from './lib/harness.mjs';

const argv = process.argv.slice(2);
const opt = (n, d) => Number(argv.find((a) => a.startsWith(`--${n}=`))?.split('=')[1] ?? d);
const calls = opt('calls', 3000);
const rounds = opt('rounds', 5);
const concurrency = opt('concurrency', 8);
const stream = argv.includes('--stream');
const here = new URL('./lib/', import.meta.url).pathname;
const beforeDir = argv.find((a) => a.startsWith('--before='))?.split('=')[1];

pinSelf();
const up = await spawnNode(`${here}upstream.mjs`, ['--chunks', '5', '--interval', '0'], {
  core: layout.serverCore,
});
const baseURL = `http://127.0.0.1:${up.port}/v1`;
const plain = new OpenAI({ baseURL, apiKey: 'sk-bench', maxRetries: 0 });
const router = createRouter({ endpoints: [{ id: 'up', url: baseURL, apiKey: 'sk-bench' }] });
const adapter = createOpenAI(router);
const clients = { plain, adapter };
if (beforeDir) {
  const core = await import(`${beforeDir}/packages/core/dist/index.js`);
  const ad = await import(`${beforeDir}/packages/openai-adapter/dist/index.js`);
  clients.before = ad.createOpenAI(
    core.createRouter({ endpoints: [{ id: 'up', url: baseURL, apiKey: 'sk-bench' }] }),
  );
}
const names = Object.keys(clients);
const ask = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

async function one(client) {
  if (!stream) return client.chat.completions.create(ask);
  let text = '';
  for await (const ch of await client.chat.completions.create({ ...ask, stream: true }))
    text += ch.choices[0]?.delta?.content ?? '';
  return text;
}

/** CPU µs per call of `client` over `n` calls, `concurrency` at a time. */
async function measure(client, n) {
  let next = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await one(client);
    }),
  );
  const c = process.cpuUsage(c0);
  return { cpuUs: (c.user + c.system) / n, ms: performance.now() - t0 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  // Warm every client (JIT, connections).
  for (const name of names) await measure(clients[name], 500);
  const rows = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    // Each round starts with another client: the order's bias runs against each in turn.
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const name of order) rows[name].push((await measure(clients[name], calls)).cpuUs);
    console.log(
      `round ${r + 1}: ${names.map((n) => `${n} ${rows[n].at(-1).toFixed(1)}`).join(', ')} µs/call; adapter/plain ${(rows.adapter.at(-1) / rows.plain.at(-1)).toFixed(3)}`,
    );
  }
  const med = Object.fromEntries(names.map((n) => [n, +median(rows[n]).toFixed(1)]));
  const ratio = (n) => +median(rows[n].map((x, i) => x / rows.plain[i])).toFixed(3);
  console.log(
    JSON.stringify({
      stream,
      calls,
      rounds,
      concurrency,
      cpuUsPerCall: med,
      medianRatioToPlain: Object.fromEntries(names.filter((n) => n !== 'plain').map((n) => [n, ratio(n)])),
    }),
  );
} finally {
  await up.stop();
}
