#!/usr/bin/env node
// The floor for a Node.js proxy: a bare undici pass-through that reads the request body (as any gateway must, to
// see the model) and streams the answer back. node bench/lib/bare-proxy.mjs <upstream origin> [port]
import { createServer } from 'node:http';
import { Pool } from 'undici';

const pool = new Pool(process.argv[2], { connections: 256 });
const HOP = ['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade', 'proxy-connection'];
const strip = (h) => {
  for (const k of HOP) delete h[k];
  return h;
};
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    pool.request(
      { method: req.method, path: req.url, headers: strip({ ...req.headers }), body },
      (err, up) => {
        if (err) return res.writeHead(502).end();
        res.writeHead(up.statusCode, strip(up.headers));
        // Plain data/end forwarding with backpressure: stream.pipeline() costs about half the throughput here.
        up.body
          .on('data', (c) => {
            if (!res.write(c)) {
              up.body.pause();
              res.once('drain', () => up.body.resume());
            }
          })
          .on('end', () => res.end())
          .on('error', () => res.destroy());
      },
    );
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[3] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port, pid: process.pid })}\n`);
});
