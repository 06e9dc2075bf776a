// node bench/security/scrape.mjs <path to an @lb/server build's index.js>   (e.g. packages/server/dist/index.js)
// Scrape size after 200 made-up model names × 3 endpoints answered 2xx (issue 23 item 6).
import { createServer as httpServer } from 'node:http';

const { createServer } = await import(process.argv[2]);
const up = httpServer((req, res) => {
  let b = '';
  req.on('data', (d) => (b += d));
  req.on('end', () => {
    const body = JSON.stringify({
      id: 'x',
      object: 'chat.completion',
      created: 0,
      model: JSON.parse(b).model,
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
await new Promise((r) => up.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${up.address().port}/v1`;
const server = createServer({
  router: {
    endpoints: [1, 2, 3].map((i) => ({ id: `e${i}`, url, apiKey: `sk-e${i}-0123456789abcdef` })),
    strategy: 'round-robin',
  },
  server: { port: 0, logLevel: 'silent' },
  logDestination: { write: () => true },
});
const base = await server.listen();
const size = async () => (await (await fetch(`${base}/metrics`)).text()).length;
const before = await size();
for (let m = 0; m < 200; m++)
  for (let e = 0; e < 3; e++) {
    const r = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: `made-up-${m}`, messages: [] }),
    });
    await r.text();
  }
const t = process.cpuUsage();
const after = await size();
const cpu = process.cpuUsage(t);
console.log(
  `scrape ${before} B → ${after} B after 600 requests with 200 made-up model names; one scrape ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU`,
);
await server.close(100);
up.close();
