#!/usr/bin/env node
// CPU per call of `LoadBalancedOpenAI` (@lb/openai-adapter, on the exchange engine) against the plain `openai` SDK,
// both in this process against the same local upstream (bench/lib/upstream.mjs, its own process). Rounds alternate
// which client goes first; CPU is this process's user+sys (process.cpuUsage) over a fixed number of calls, so the
// upstream's work is not counted. Target (perf-targets.md): the adapter ≤ 1.05 × the plain SDK.
//
//   node bench/adapter-cpu.mjs [--calls=3000] [--rounds=5] [--concurrency=8] [--stream]
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

pinSelf();
const up = await spawnNode(`${here}upstream.mjs`, ['--chunks', '5', '--interval', '0'], {
  core: layout.serverCore,
});
const baseURL = `http://127.0.0.1:${up.port}/v1`;
const plain = new OpenAI({ baseURL, apiKey: 'sk-bench', maxRetries: 0 });
const router = createRouter({ endpoints: [{ id: 'up', url: baseURL, apiKey: 'sk-bench' }] });
const adapter = createOpenAI(router);
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
  // Warm both (JIT, connections).
  await measure(plain, 500);
  await measure(adapter, 500);
  const rows = { plain: [], adapter: [] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['plain', 'adapter'] : ['adapter', 'plain'];
    for (const name of order) rows[name].push(await measure(name === 'plain' ? plain : adapter, calls));
    const p = rows.plain.at(-1).cpuUs;
    const a = rows.adapter.at(-1).cpuUs;
    console.log(
      `round ${r + 1}: plain ${p.toFixed(1)} µs/call, adapter ${a.toFixed(1)} µs/call, ratio ${(a / p).toFixed(3)}`,
    );
  }
  const p = median(rows.plain.map((x) => x.cpuUs));
  const a = median(rows.adapter.map((x) => x.cpuUs));
  const ratios = rows.plain.map((x, i) => rows.adapter[i].cpuUs / x.cpuUs);
  console.log(
    JSON.stringify({
      stream,
      calls,
      rounds,
      concurrency,
      plainCpuUsPerCall: +p.toFixed(1),
      adapterCpuUsPerCall: +a.toFixed(1),
      ratioOfMedians: +(a / p).toFixed(3),
      medianRatio: +median(ratios).toFixed(3),
    }),
  );
} finally {
  await up.stop();
}
