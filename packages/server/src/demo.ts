import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EndpointConfig } from '@lb/core';
import { sendJson } from './http.js';

/** How a simulated upstream behaves. */
export interface DemoUpstreamProfile {
  name: string;
  /** Latency before answering, ms: [min, max]. */
  latencyMs: [number, number];
  /** Share of requests answered with 500 (0..1). */
  failRate: number;
  /** Share of requests answered with 429 + Retry-After 2 s (0..1). */
  rateLimitRate: number;
}

/**
 * The three demo upstreams: one healthy, one flaky (35 % 500s, 10 % 429s), one slow (0.6–1.2 s).
 *
 * @example
 * const demo = await startDemoUpstreams(DEMO_PROFILES.filter((p) => p.name !== 'slow'));
 */
export const DEMO_PROFILES: readonly DemoUpstreamProfile[] = [
  { name: 'healthy', latencyMs: [20, 60], failRate: 0, rateLimitRate: 0 },
  { name: 'flaky', latencyMs: [20, 80], failRate: 0.35, rateLimitRate: 0.1 },
  { name: 'slow', latencyMs: [600, 1200], failRate: 0, rateLimitRate: 0 },
];

/** Running demo upstreams and the endpoint configs that point at them. */
export interface DemoUpstreams {
  endpoints: EndpointConfig[];
  close(): Promise<void>;
}

const MODELS = ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'];
const WORDS = 'Load balanced hello from the {name} upstream: lb picked me, and failover stands by.'.split(
  ' ',
);

/**
 * Starts simulated OpenAI-compatible upstreams on 127.0.0.1 (random ports) that answer chat completions (JSON and
 * streaming), completions, embeddings and models, each with its own latency and failure profile. No keys, no network.
 *
 * @example
 * const demo = await startDemoUpstreams();
 * const server = createServer({ router: { endpoints: demo.endpoints, strategy: 'round-robin' } });
 */
export async function startDemoUpstreams(
  profiles: readonly DemoUpstreamProfile[] = DEMO_PROFILES,
  random: () => number = Math.random,
): Promise<DemoUpstreams> {
  const servers: Server[] = [];
  const endpoints: EndpointConfig[] = [];
  for (const p of profiles) {
    const key = `sk-demo-${'0'.repeat(20)}-${p.name}`;
    const srv = createServer((req, res) => void serve(p, key, random, req, res));
    srv.keepAliveTimeout = 30_000;
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    servers.push(srv);
    const port = (srv.address() as AddressInfo).port;
    endpoints.push({ id: p.name, url: `http://127.0.0.1:${port}/v1`, apiKey: key, priority: 1 });
  }
  return {
    endpoints,
    close: async () => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((r) => {
              s.closeAllConnections();
              s.close(() => r());
            }),
        ),
      );
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function serve(
  p: DemoUpstreamProfile,
  key: string,
  random: () => number,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  let body: any = {};
  try {
    body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
  } catch {
    return sendJson(res, 400, {
      error: { message: 'bad JSON', type: 'invalid_request_error', code: null, param: null },
    });
  }
  if (req.headers.authorization !== `Bearer ${key}`)
    return sendJson(res, 401, {
      error: { message: 'bad key', type: 'invalid_request_error', code: 'invalid_api_key', param: null },
    });
  const path = (req.url ?? '/').split('?')[0].replace(/^\/v1/, '');
  if (path === '/models')
    return sendJson(res, 200, {
      object: 'list',
      data: MODELS.map((id) => ({ id, object: 'model', created: 0, owned_by: `demo-${p.name}` })),
    });
  const [lo, hi] = p.latencyMs;
  await sleep(lo + random() * (hi - lo));
  const roll = random();
  if (roll < p.rateLimitRate)
    return sendJson(
      res,
      429,
      {
        error: {
          message: `${p.name}: rate limited`,
          type: 'rate_limit_error',
          code: 'rate_limit_exceeded',
          param: null,
        },
      },
      { 'retry-after': '2' },
    );
  if (roll < p.rateLimitRate + p.failRate)
    return sendJson(res, 500, {
      error: { message: `${p.name}: simulated failure`, type: 'server_error', code: null, param: null },
    });
  const model = typeof body.model === 'string' ? body.model : 'gpt-4o-mini';
  const words = WORDS.map((w) => w.replace('{name}', p.name));
  const created = Math.floor(Date.now() / 1000);
  const usage = { prompt_tokens: 8, completion_tokens: words.length, total_tokens: 8 + words.length };
  if (path === '/chat/completions' && body.stream === true) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const id = `chatcmpl-demo-${p.name}-${created}`;
    const send = (delta: object, finish: string | null = null) =>
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: p.name, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`,
      );
    send({ role: 'assistant', content: '' });
    for (let i = 0; i < words.length; i++) {
      if (res.destroyed) return;
      send({ content: (i ? ' ' : '') + words[i] });
      await sleep(40);
    }
    send({}, 'stop');
    if (body.stream_options?.include_usage)
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`,
      );
    res.end('data: [DONE]\n\n');
    return;
  }
  if (path === '/chat/completions')
    return sendJson(res, 200, {
      id: `chatcmpl-demo-${p.name}-${created}`,
      object: 'chat.completion',
      created,
      model,
      system_fingerprint: p.name,
      choices: [
        { index: 0, message: { role: 'assistant', content: words.join(' ') }, finish_reason: 'stop' },
      ],
      usage,
    });
  if (path === '/completions')
    return sendJson(res, 200, {
      id: `cmpl-demo-${created}`,
      object: 'text_completion',
      created,
      model,
      choices: [{ index: 0, text: words.join(' '), finish_reason: 'stop' }],
      usage,
    });
  if (path === '/embeddings')
    return sendJson(res, 200, {
      object: 'list',
      // The openai SDK asks for base64 by default and decodes it as little-endian float32s.
      data: [
        {
          object: 'embedding',
          index: 0,
          embedding:
            body.encoding_format === 'base64'
              ? Buffer.from(new Float32Array([0.1, 0.2, 0.3]).buffer).toString('base64')
              : [0.1, 0.2, 0.3],
        },
      ],
      model,
      usage: { prompt_tokens: 4, total_tokens: 4 },
    });
  sendJson(res, 404, {
    error: {
      message: `demo upstream does not implement ${path}`,
      type: 'invalid_request_error',
      code: null,
      param: null,
    },
  });
}
