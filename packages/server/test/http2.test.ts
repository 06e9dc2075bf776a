import { readFileSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { fakeKey } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cliTimeout, measureCliStart, type Proc, spawnServer } from './cli-helpers.js';

// The server starts in a hook: its time limit follows the machine's pace.
await measureCliStart();
vi.setConfig({ hookTimeout: cliTimeout(4, 10_000) });

// HTTPS upstreams that speak HTTP/2 only (as api.openai.com offers it through ALPN): lb-server negotiates h2 by
// default. The upstream's certificate is a self-signed test fixture for 127.0.0.1, trusted by the spawned lb-server
// through NODE_EXTRA_CA_CERTS (how a Node process is told about a private CA).
const CERT = fileURLToPath(new URL('./fixtures/upstream-cert.pem', import.meta.url));
const KEY = fileURLToPath(new URL('./fixtures/upstream-key.pem', import.meta.url));
const keys = { a: fakeKey('h2-one'), b: fakeKey('h2-two') };

interface Seen {
  httpVersion: string;
  authorization: string | undefined;
  path: string;
  model: unknown;
}

interface H2Upstream {
  url: string;
  seen: Seen[];
  /** What the next requests get instead of an answer: an HTTP status, or a stream opening with an error event. */
  fail: Array<number | 'error-event'>;
  close(): Promise<void>;
}

const chunk = (obj: object) => `data: ${JSON.stringify(obj)}\n\n`;
const base = { id: 'chatcmpl-h2', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' };

async function h2Upstream(name: string): Promise<H2Upstream> {
  const seen: Seen[] = [];
  const fail: H2Upstream['fail'] = [];
  const server: Http2SecureServer = createSecureServer(
    { key: readFileSync(KEY), cert: readFileSync(CERT), allowHTTP1: false },
    async (req: Http2ServerRequest, res) => {
      const parts: Buffer[] = [];
      for await (const p of req) parts.push(p as Buffer);
      const body = JSON.parse(Buffer.concat(parts).toString('utf8') || '{}');
      seen.push({
        httpVersion: req.httpVersion,
        authorization: req.headers.authorization,
        path: req.url,
        model: body.model,
      });
      const f = fail.shift();
      if (typeof f === 'number') {
        res.writeHead(f, { 'content-type': 'application/json', 'retry-after': '0' });
        res.end(
          JSON.stringify({
            error: { message: `${name} failed`, type: 'server_error', param: null, code: null },
          }),
        );
        return;
      }
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        if (f === 'error-event') {
          res.end(chunk({ error: { message: 'overloaded', type: 'overloaded_error' } }));
          return;
        }
        res.write(
          chunk({
            ...base,
            choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }],
          }),
        );
        for (const t of ['Hello', ' from', ` ${name}`])
          res.write(chunk({ ...base, choices: [{ index: 0, delta: { content: t }, finish_reason: null }] }));
        res.write(
          chunk({
            ...base,
            choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
            usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
          }),
        );
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-ratelimit-remaining-requests': '99' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-h2',
          object: 'chat.completion',
          created: 1,
          model: body.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: `Hello from ${name}` },
              finish_reason: 'stop',
            },
          ],
          usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
        }),
      );
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/v1`,
    seen,
    fail,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        // Sessions lb-server keeps alive would hold `close` open.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

let a: H2Upstream;
let b: H2Upstream;
let proc: Proc;
let client: OpenAI;

beforeAll(async () => {
  a = await h2Upstream('a');
  b = await h2Upstream('b');
  proc = await spawnServer({
    NODE_EXTRA_CA_CERTS: CERT,
    LB_STRATEGY: 'priority',
    OPENAI_API_KEY_1: keys.a,
    OPENAI_BASE_URL_1: a.url,
    OPENAI_PRIORITY_1: '1',
    OPENAI_API_KEY_2: keys.b,
    OPENAI_BASE_URL_2: b.url,
    OPENAI_PRIORITY_2: '2',
    OPENAI_CIRCUIT_BREAKER: 'false',
    OPENAI_HEALTH_CHECK_INTERVAL: '0',
  });
  client = new OpenAI({ baseURL: `${proc.url}/v1`, apiKey: 'sk-client-unused', maxRetries: 0 });
});

afterAll(async () => {
  proc?.child.kill('SIGTERM');
  await proc?.exit;
  await Promise.all([a?.close(), b?.close()]);
});

describe('HTTP/2 upstreams (TLS + ALPN h2)', () => {
  it('proxies a chat completion over h2 with the endpoint key', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.choices[0].message.content).toBe('Hello from a');
    expect(r.usage?.total_tokens).toBe(8);
    const s = a.seen.at(-1)!;
    expect(s.httpVersion).toBe('2.0');
    expect(s.authorization).toBe(`Bearer ${keys.a}`);
    expect(s.path).toBe('/v1/chat/completions');
  });

  it('streams over h2: the role event, every delta, the usage and [DONE] reach the SDK', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: number | undefined;
    let events = 0;
    for await (const c of stream) {
      events++;
      text += c.choices[0]?.delta?.content ?? '';
      if (c.usage) usage = c.usage.total_tokens;
    }
    expect(text).toBe('Hello from a');
    expect(events).toBe(5);
    expect(usage).toBe(8);
    expect(a.seen.at(-1)!.httpVersion).toBe('2.0');
  });

  it('fails over between h2 upstreams: a 503, then a stream opening with an error event', async () => {
    const before = b.seen.length;
    a.fail.push(503);
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.choices[0].message.content).toBe('Hello from b');

    a.fail.push('error-event');
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('Hello from b');
    expect(b.seen.length - before).toBe(2);
    expect(b.seen.every((s) => s.httpVersion === '2.0' && s.authorization === `Bearer ${keys.b}`)).toBe(true);
  });
});
