// Preloaded (`node --require`) into a proxy or the fake upstream by the stages benchmark (lib/stages.mjs): stamps
// each request's steps with the monotonic clock, which every process on the machine shares, so that a proxy's
// records can be joined with the upstream's. One request at a time is assumed (the benchmark sends one at a time).
// It also records every garbage collection. SIGUSR1 forgets what was recorded (after the warm-up); SIGUSR2 writes
// { records, gcs } to $MARKS_OUT as JSON.
'use strict';
const dc = require('node:diagnostics_channel');
const http = require('node:http');
const net = require('node:net');
const { renameSync, writeFileSync } = require('node:fs');
const { PerformanceObserver, performance } = require('node:perf_hooks');

const now = () => Number(process.hrtime.bigint()) / 1000; // µs
let records = [];
/** Garbage collections as [start, end] on the same clock (µs): a slow request that overlaps one lost that time. */
let gcs = [];
// performance.now() and hrtime are both monotonic: one offset maps the first onto the second.
const perfToHr = now() - performance.now() * 1000;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const start = perfToHr + e.startTime * 1000;
    gcs.push([start, start + e.duration * 1000]);
  }
}).observe({ entryTypes: ['gc'] });
/** The request being served: steps are stamped on it, each once. */
let cur;

dc.subscribe('http.server.request.start', () => {
  cur = { arrive: now() };
  records.push(cur);
});
// The proxy hands the request to undici's socket (published just before the bytes are written).
dc.subscribe('undici:client:sendHeaders', () => {
  if (!cur || cur.sent !== undefined) return;
  cur.sent = now();
  const c = cur;
  // The proxy's own work after the write is over once the event loop reaches its check phase.
  setImmediate(() => {
    c.idle = now();
  });
});
// The proxy hands undici the upstream request (undici may write it only later: see `sent`).
dc.subscribe('undici:request:create', () => {
  if (cur && cur.dispatch === undefined) cur.dispatch = now();
});
// The proxy opens a new upstream connection for this request (none idle in its pool).
dc.subscribe('undici:client:beforeConnect', () => {
  if (cur && cur.sent === undefined && cur.connect === undefined) cur.connect = now();
});
// undici has parsed the upstream's response head.
dc.subscribe('undici:request:headers', () => {
  if (cur && cur.upHeaders === undefined) cur.upHeaders = now();
});
// The first socket event after the upstream request was written: the upstream's answer reached the process.
const emit = net.Socket.prototype.emit;
net.Socket.prototype.emit = function (event, ...args) {
  if ((event === 'data' || event === 'readable') && cur && cur.sent !== undefined && cur.socket === undefined)
    cur.socket = now();
  return emit.call(this, event, ...args);
};
const writeHead = http.ServerResponse.prototype.writeHead;
http.ServerResponse.prototype.writeHead = function (...args) {
  if (cur && cur.head === undefined) cur.head = now();
  return writeHead.apply(this, args);
};
const write = http.ServerResponse.prototype.write;
http.ServerResponse.prototype.write = function (...args) {
  if (cur && cur.write === undefined) cur.write = now();
  return write.apply(this, args);
};

process.on('SIGUSR1', () => {
  records = [];
  gcs = [];
  cur = undefined;
});
process.on('SIGUSR2', () => {
  // Whole or not at all: the reader waits for the file to appear.
  const out = process.env.MARKS_OUT;
  writeFileSync(`${out}.part`, JSON.stringify({ records, gcs }));
  renameSync(`${out}.part`, out);
});
