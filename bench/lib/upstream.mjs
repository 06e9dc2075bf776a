#!/usr/bin/env node
// A fast fake OpenAI upstream for benchmarks and chaos runs: answers POST /v1/chat/completions from pre-rendered
// buffers (JSON, or paced SSE when the body asks for `"stream":true`), GET /v1/models, and anything else with a
// small JSON body. Zero-latency by default; `latencyMs` delays every answer; `behaviour(req)` scripts faults.
//
// As a process: node bench/lib/upstream.mjs [--port N] [--latency MS] [--chunks N] [--interval MS] [--status CODE]
// prints one JSON line {"port":N,"pid":N} on stdout once listening.
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

const CHAT = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1700000000,
    model: 'gpt-4o-mini',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'Hello from the bench upstream.' },
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
  }),
);
const MODELS = Buffer.from(
  JSON.stringify({
    object: 'list',
    data: [{ id: 'gpt-4o-mini', object: 'model', created: 0, owned_by: 'bench' }],
  }),
);
const chunk = (i) =>
  Buffer.from(
    `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: `tok${i} ` }, finish_reason: null }] })}\n\n`,
  );
const SSE_END = Buffer.from(
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 } })}\n\ndata: [DONE]\n\n`,
);
/** What a provider sends when a stream it had begun fails (OpenAI's format: an error object, then the end). */
const ERROR_EVENT = Buffer.from(
  `data: ${JSON.stringify({ error: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null } })}\n\n`,
);
const JSON_HEADERS = { 'content-type': 'application/json' };
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };
const STREAM_RE = /"stream"\s*:\s*true/;

function errorBody(status) {
  const type = status === 429 ? 'rate_limit_exceeded' : status === 401 ? 'invalid_api_key' : 'server_error';
  return Buffer.from(
    JSON.stringify({ error: { message: `bench upstream: ${status}`, type, param: null, code: type } }),
  );
}

/**
 * Starts the upstream in this process.
 * @param {{ port?: number, host?: string, latencyMs?: number, chunks?: number, intervalMs?: number, status?: number,
 *   behaviour?: (info: { stream: boolean, path: string, at: number }) => any, name?: string, record?: boolean }} [opts]
 *   `behaviour` returns undefined (normal answer) or one of `{ type: 'status', status, retryAfter? }`,
 *   `{ type: 'reset' }`, `{ type: 'hang' }`, `{ type: 'slow', delayMs }`, `{ type: 'drop', afterChunks }`, `{ type: 'error-event', afterChunks }` (streams: an error event then the end).
 */
export async function startUpstream(opts = {}) {
  const latencyMs = opts.latencyMs ?? 0;
  const nChunks = opts.chunks ?? 10;
  const intervalMs = opts.intervalMs ?? 0;
  const chunks = Array.from({ length: nChunks }, (_, i) => chunk(i));
  const behaviour = opts.behaviour;
  const fixedStatus = opts.status;
  const stats = { requests: 0, ok: 0, faults: 0, aborted: 0, log: opts.record ? [] : undefined };
  const sockets = new Set();

  const sendStream = (res, dropAfter, errorEvent = false) => {
    res.writeHead(200, SSE_HEADERS);
    if (intervalMs <= 0 && dropAfter === undefined) {
      for (let i = 0; i < nChunks; i++) res.write(chunks[i]);
      res.end(SSE_END);
      return;
    }
    let i = 0;
    const tick = () => {
      if (res.destroyed) return;
      if (dropAfter !== undefined && i >= dropAfter) {
        if (errorEvent) res.end(ERROR_EVENT);
        else res.socket?.destroy();
        return;
      }
      if (i < nChunks) {
        res.write(chunks[i++]);
        setTimeout(tick, intervalMs);
      } else res.end(SSE_END);
    };
    tick();
  };

  const answer = (req, res, stream, b) => {
    if (b === undefined) {
      stats.ok++;
      if (stream) sendStream(res);
      else if (req.method === 'GET' && req.url.endsWith('/models'))
        res.writeHead(200, JSON_HEADERS).end(MODELS);
      else res.writeHead(200, JSON_HEADERS).end(CHAT);
      return;
    }
    stats.faults++;
    switch (b.type) {
      case 'status': {
        const h = { 'content-type': 'application/json' };
        if (b.retryAfter !== undefined) h['retry-after'] = String(b.retryAfter);
        res.writeHead(b.status, h).end(errorBody(b.status));
        return;
      }
      case 'reset':
        req.socket.destroy();
        return;
      case 'hang':
        return;
      case 'slow':
        setTimeout(() => answer(req, res, stream, undefined), b.delayMs);
        return;
      case 'drop':
      case 'error-event':
        stats.faults--;
        stats.ok++;
        if (stream) sendStream(res, b.afterChunks ?? 2, b.type === 'error-event');
        else req.socket.destroy();
        return;
      default:
        res.writeHead(500, JSON_HEADERS).end(errorBody(500));
    }
  };

  const server = createServer((req, res) => {
    stats.requests++;
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const stream = body.length > 0 && STREAM_RE.test(body);
      let b = fixedStatus !== undefined ? { type: 'status', status: fixedStatus } : undefined;
      if (behaviour !== undefined) b = behaviour({ stream, path: req.url, at: Date.now() });
      if (stats.log)
        stats.log.push({
          at: Date.now(),
          post: req.method === 'POST',
          fault: b === undefined ? null : b.type,
        });
      res.on('close', () => {
        if (!res.writableFinished) stats.aborted++;
      });
      if (latencyMs > 0) setTimeout(() => answer(req, res, stream, b), latencyMs);
      else answer(req, res, stream, b);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    name: opts.name ?? 'upstream',
    port,
    url: `http://127.0.0.1:${port}/v1`,
    stats,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const u = await startUpstream({
    port: arg('port', 0),
    latencyMs: arg('latency', 0),
    chunks: arg('chunks', 10),
    intervalMs: arg('interval', 0),
    status: arg('status', undefined),
  });
  process.stdout.write(`${JSON.stringify({ port: u.port, pid: process.pid })}\n`);
  process.on('SIGTERM', () => u.close().then(() => process.exit(0)));
}
