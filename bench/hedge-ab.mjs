#!/usr/bin/env node
// A/B of an ordinary request through two lb-server builds in one process (hedging and continuation off): the same
// local upstream, interleaved rounds, CPU µs per request (process.cpuUsage, client and upstream included alike for
// both) and wall p50 at one in flight. CPU time is what a loaded machine disturbs least.
//   node bench/hedge-ab.mjs <server index.js A> <server index.js B> [--rounds=6] [--n=2000]
import { createServer as httpServer } from 'node:http';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const argv = process.argv.slice(2);
const opt = (n, d) => Number(argv.find((a) => a.startsWith(`--${n}=`))?.split('=')[1] ?? d);
const [fileA, fileB] = argv.filter((a) => !a.startsWith('--'));
const ROUNDS = opt('rounds', 6);
const N = opt('n', 2000);
const load = async (f) => (await import(pathToFileURL(resolve(f)).href)).createServer;

const answer = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});
const up = httpServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
  });
});
await new Promise((r) => up.listen(0, '127.0.0.1', r));
const upUrl = `http://127.0.0.1:${up.address().port}/v1`;

async function start(createServer) {
  const s = createServer({
    router: { endpoints: [{ id: 'a', url: upUrl, apiKey: 'sk-bench-aaaaaaaaaaaa' }] },
    breaker: { enabled: false },
    logDestination: { write: () => true },
    server: { port: 0, logLevel: 'error' },
  });
  return { s, base: await s.listen() };
}

const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
async function round(base, n) {
  const ms = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const r = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await r.arrayBuffer();
    ms.push(performance.now() - t);
  }
  const c = process.cpuUsage(c0);
  ms.sort((x, y) => x - y);
  return { cpuUs: (c.user + c.system) / n, p50Ms: ms[Math.floor(n / 2)] };
}

const A = await start(await load(fileA));
const B = await start(await load(fileB));
await round(A.base, 300);
await round(B.base, 300);
const res = { A: [], B: [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const [k, x] of r % 2
    ? [
        ['B', B],
        ['A', A],
      ]
    : [
        ['A', A],
        ['B', B],
      ])
    res[k].push(await round(x.base, N));
}
const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
for (const k of ['A', 'B']) {
  const cpu = res[k].map((x) => x.cpuUs);
  const p50 = res[k].map((x) => x.p50Ms * 1000);
  console.log(
    `${k}: cpu µs/req median ${med(cpu).toFixed(1)} (${cpu.map((x) => x.toFixed(0)).join(' ')}); p50 µs median ${med(p50).toFixed(0)} (${p50.map((x) => x.toFixed(0)).join(' ')})`,
  );
}
console.log(`B/A cpu: ${(med(res.B.map((x) => x.cpuUs)) / med(res.A.map((x) => x.cpuUs))).toFixed(3)}`);
await A.s.close(100);
await B.s.close(100);
up.close();
