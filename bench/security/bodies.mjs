// node bench/security/bodies.mjs <path to an lb-server build's cli.js>   (e.g. packages/server/dist/cli.js)
// Peak RSS of lb-server (the CLI) while 24 clients send 24 MB bodies at once to a slow upstream (issue 23 item 10).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as httpServer, request } from 'node:http';

const cli = process.argv[2];
const up = httpServer((req, res) => {
  req.resume();
  req.on('end', () =>
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"object":"list","data":[]}');
    }, 1500),
  );
});
await new Promise((r) => up.listen(0, '127.0.0.1', r));
const child = spawn(process.execPath, [cli, '--port', '0'], {
  env: {
    PATH: process.env.PATH,
    OPENAI_API_KEY_1: 'sk-bench-0123456789abcdef',
    OPENAI_BASE_URL_1: `http://127.0.0.1:${up.address().port}/v1`,
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise((resolve) => {
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]);
  });
});
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
const idle = rss();
const body = Buffer.alloc(24 * 1024 * 1024, 'a');
body.write('{"model":"text-embedding-3-small","input":"');
body.write('"}', body.length - 2);
let peak = idle;
const timer = setInterval(() => (peak = Math.max(peak, rss())), 20);
const u = new URL(url);
const statuses = await Promise.all(
  Array.from(
    { length: 24 },
    () =>
      new Promise((resolve) => {
        const r = request(
          {
            host: u.hostname,
            port: u.port,
            method: 'POST',
            path: '/v1/embeddings',
            headers: { 'content-type': 'application/json', 'content-length': body.length },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
          },
        );
        r.on('error', () => resolve('error'));
        r.end(body);
      }),
  ),
);
clearInterval(timer);
const count = {};
for (const s of statuses) count[s] = (count[s] ?? 0) + 1;
console.log(`RSS idle ${idle.toFixed(0)} MB, peak ${peak.toFixed(0)} MB; answers ${JSON.stringify(count)}`);
child.kill('SIGKILL');
up.close();
