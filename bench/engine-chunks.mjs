#!/usr/bin/env node
// CPU of the exchange engine's own work per stream chunk, in process: `Attempt` (@lb/exchange) framing whole events,
// the first-content gate, the error-event and usage searches, delivering to a sink — no sockets, no timers. With
// `--before=<checkout>` another built checkout's engine runs interleaved in the same rounds (an A/B of a change).
//
//   node bench/engine-chunks.mjs [--streams=20000] [--rounds=7] [--before=<checkout>]
const argv = process.argv.slice(2);
const opt = (n, d) => argv.find((a) => a.startsWith(`--${n}=`))?.split('=')[1] ?? d;
const streams = Number(opt('streams', 20000));
const rounds = Number(opt('rounds', 7));
const before = opt('before', undefined);
const here = new URL('../', import.meta.url).pathname;
const builds = { after: await import(`${here}packages/exchange/dist/index.js`) };
if (before) builds.before = await import(`${before}/packages/exchange/dist/index.js`);

const enc = new TextEncoder();
// 20 content chunks as OpenAI sends them, then the end.
const chunks = Array.from({ length: 20 }, (_, i) =>
  enc.encode(
    `data: {"id":"chatcmpl-abc123","object":"chat.completion.chunk","created":1733500000,"model":"gpt-4o-mini","system_fingerprint":"fp_x","choices":[{"index":0,"delta":{"content":"token ${i} "},"logprobs":null,"finish_reason":null}]}\n\n`,
  ),
);
chunks.push(enc.encode('data: [DONE]\n\n'));
const sink = { data: () => true, end() {}, error() {} };

function stream(X, settings) {
  const a = new X.Attempt(settings, true, 0);
  a.onConnect(() => {});
  a.onResponse(200, { 'content-type': 'text/event-stream' }, () => {});
  a.attach(sink);
  for (const c of chunks) a.onData(c);
  a.onComplete();
}
const settings = Object.fromEntries(
  Object.entries(builds).map(([k, X]) => [
    k,
    { idleTimeoutMs: 0, holdMs: 0, budget: undefined, timers: X.defaultTimers },
  ]),
);
const run = (name) => {
  const X = builds[name];
  const s = settings[name];
  const t = process.cpuUsage();
  for (let i = 0; i < streams; i++) stream(X, s);
  const c = process.cpuUsage(t);
  return (c.user + c.system) / streams / chunks.length;
};
const names = Object.keys(builds);
for (const n of names) run(n); // warm
const rows = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < rounds; r++)
  for (const n of names.map((_, i) => names[(i + r) % names.length])) rows[n].push(run(n));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  JSON.stringify({
    chunksPerStream: chunks.length,
    streams,
    rounds,
    cpuUsPerChunk: Object.fromEntries(names.map((n) => [n, +median(rows[n]).toFixed(3)])),
  }),
);
