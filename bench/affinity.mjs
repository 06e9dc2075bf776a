#!/usr/bin/env node
// The cost of the object-affinity look-up per request (issue 25): the check every request pays (is this an object
// route?), and the look-up an object route pays, in memory and in a real redis-server (loopback round trip).
//   node bench/affinity.mjs [--n=200000] [--redis-n=5000]
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { createRouter } from '../packages/core/dist/index.js';
import {
  isObjectRoute,
  MemoryAffinityStore,
  pinnedEndpoint,
  RedisAffinityStore,
} from '../packages/exchange/dist/index.js';

const argv = process.argv.slice(2);
const opt = (n, d) => Number(argv.find((a) => a.startsWith(`--${n}=`))?.split('=')[1] ?? d);
const N = opt('n', 200_000);
const RN = opt('redis-n', 5000);
const Redis = createRequire(new URL('../packages/server/package.json', import.meta.url))('ioredis');

const router = createRouter({
  endpoints: [
    { id: 'a', url: 'http://127.0.0.1:1/v1', apiKey: 'k-a' },
    { id: 'b', url: 'http://127.0.0.1:1/v1', apiKey: 'k-b' },
  ],
});

const time = async (label, n, fn) => {
  for (let i = 0; i < Math.min(n, 2000); i++) await fn(i); // warm
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(
    `${label.padEnd(58)} ${ns < 1000 ? `${ns.toFixed(0)} ns` : `${(ns / 1000).toFixed(1)} µs`}/request`,
  );
};

const timeSync = (label, n, fn) => {
  let x = 0;
  for (let i = 0; i < 10_000; i++) x += fn(i) ? 1 : 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) x += fn(i) ? 1 : 0;
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`${label.padEnd(58)} ${ns.toFixed(1)} ns/request`);
  return x;
};

timeSync('every request: isObjectRoute("/chat/completions")', N * 10, () =>
  isObjectRoute('/chat/completions'),
);
timeSync('every request: isObjectRoute("/files/file-abc")', N * 10, () => isObjectRoute('/files/file-abc'));

const mem = new MemoryAffinityStore();
const ids = Array.from({ length: 10_000 }, (_, i) => `file-${i.toString(36)}x`);
for (const id of ids) mem.set(id, 'b', 30 * 86_400_000);
await time('object route, memory store, hit: GET /files/{id}', N, (i) =>
  pinnedEndpoint(router, mem, undefined, `/files/${ids[i % ids.length]}`, undefined),
);
await time('object route, memory store, body id: POST /batches', N, (i) =>
  pinnedEndpoint(router, mem, undefined, '/batches', () => ({ input_file_id: ids[i % ids.length] })),
);

const port = await new Promise((r) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => r(p));
  });
});
const proc = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
  stdio: 'ignore',
});
const client = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: 0, retryStrategy: () => 20 });
client.on('error', () => {});
await new Promise((r) => client.once('ready', r));
const red = new RedisAffinityStore(client);
for (const id of ids.slice(0, 1000)) await red.set(id, 'b', 30 * 86_400_000);
await time('object route, Redis store (loopback), hit: GET /files/{id}', RN, (i) =>
  pinnedEndpoint(router, red, undefined, `/files/${ids[i % 1000]}`, undefined),
);
await time('object route naming no id: POST /files (no look-up)', RN, () =>
  pinnedEndpoint(router, red, undefined, '/files', undefined),
);
client.disconnect();
proc.kill();
