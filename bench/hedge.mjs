#!/usr/bin/env node
// Hedged requests: p50/p99 of non-streaming chat completions through lb-server when its priority-1 endpoint answers
// 1 request in 20 after 800 ms (the other at once), without hedging and with it (fixed delay, and the route's p95),
// and the extra upstream load hedging added (requests at the second endpoint / client requests).
//   node bench/hedge.mjs [--n=600] [--concurrency=4] [--slow-ms=800] [--every=20] [--after-ms=100] [--reverse]
import { createServer as httpServer } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './lib/proxy.mjs';

const argv = process.argv.slice(2);
const opt = (n, d) => Number(argv.find((a) => a.startsWith(`--${n}=`))?.split('=')[1] ?? d);
const N = opt('n', 600);
const CONC = opt('concurrency', 4);
const SLOW = opt('slow-ms', 800);
const EVERY = opt('every', 20);
const AFTER = opt('after-ms', 100);
const { createServer } = await import(pathToFileURL(join(ROOT, 'packages/server/dist/index.js')).href);

const answer = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

/** A fake upstream; `slow(i)` says whether its i-th request waits `SLOW` ms. */
async function upstream(slow) {
  const state = { count: 0 };
  const s = httpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const i = ++state.count;
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(answer),
        });
        res.end(answer);
      };
      if (slow(i)) setTimeout(send, SLOW);
      else send();
    });
  });
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  return { state, url: `http://127.0.0.1:${s.address().port}/v1`, close: () => s.close() };
}

function pct(xs, q) {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function scenario(name, hedge) {
  const a = await upstream((i) => i % EVERY === 0);
  const b = await upstream(() => false);
  const server = createServer({
    router: {
      endpoints: [
        { id: 'a', url: a.url, apiKey: 'sk-bench-aaaaaaaaaaaa', priority: 1 },
        { id: 'b', url: b.url, apiKey: 'sk-bench-bbbbbbbbbbbb', priority: 2 },
      ],
      strategy: 'priority',
      outlierEjection: false,
    },
    hedge,
    breaker: { enabled: false },
    logDestination: { write: () => true },
    server: { port: 0, logLevel: 'error' },
  });
  const base = await server.listen();
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  const call = async () => {
    const t = performance.now();
    const r = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await r.arrayBuffer();
    return { ms: performance.now() - t, hedged: r.headers.get('x-lb-hedged') === '1' };
  };
  for (let i = 0; i < 40; i++) await call();
  a.state.count = 0;
  const b0 = b.state.count;
  const ms = [];
  let hedged = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next++ < N) {
        const r = await call();
        ms.push(r.ms);
        if (r.hedged) hedged++;
      }
    }),
  );
  const extra = b.state.count - b0;
  await server.close(100);
  a.close();
  b.close();
  return {
    name,
    p50Ms: +pct(ms, 0.5).toFixed(2),
    p90Ms: +pct(ms, 0.9).toFixed(2),
    p99Ms: +pct(ms, 0.99).toFixed(2),
    maxMs: +Math.max(...ms).toFixed(1),
    hedgesWon: hedged,
    extraUpstreamPct: +((100 * extra) / N).toFixed(2),
  };
}

// `--reverse`: the hedged scenarios first (a check that the order, not hedging, moves p50 on a loaded machine).
const plan = [
  ['no hedging', undefined],
  [`hedge_after_ms = ${AFTER}`, { afterMs: AFTER, budget: 0.1 }],
  ['hedge_after = "p95"', { after: 'p95', afterMs: AFTER, budget: 0.1 }],
];
const rows = [];
for (const i of argv.includes('--reverse') ? [2, 1, 0] : [0, 1, 2]) rows[i] = await scenario(...plan[i]);
console.log(`n=${N} concurrency=${CONC}; endpoint a answers 1 in ${EVERY} after ${SLOW} ms; budget 0.1`);
console.table(rows);
console.log(`p99 ratio (no hedging / fixed): ${(rows[0].p99Ms / rows[1].p99Ms).toFixed(1)}x`);
console.log(`p99 ratio (no hedging / p95): ${(rows[0].p99Ms / rows[2].p99Ms).toFixed(1)}x`);
