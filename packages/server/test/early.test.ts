import type { Socket } from 'node:net';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// A 2xx answer is written to the client as it settles the attempt, before the router's bookkeeping: the router's
// events must keep their order all the same, and the endpoint must not stay counted busy.
let up: FakeUpstream;
let server: LbServer;
let client: OpenAI;
const key = fakeKey('early');
const seen: string[] = [];
/** What the server's sockets write, call by call, while a test records (the client's reads may merge writes). */
let writes: string[] | undefined;

function watch(sock: Socket): void {
  const writev = sock._writev?.bind(sock);
  const write = sock._write.bind(sock);
  sock._writev = (chunks, cb) => {
    writes?.push(chunks.map((c) => String(c.chunk)).join(''));
    writev!(chunks, cb);
  };
  sock._write = (chunk, enc, cb) => {
    writes?.push(String(chunk));
    write(chunk, enc, cb);
  };
}

const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

beforeAll(async () => {
  up = await startFakeUpstream({ name: 'up', acceptKeys: [key] });
  server = createServer({
    router: { endpoints: [{ id: 'up', url: up.url, apiKey: key }], backoff: { initialMs: 1, maxMs: 2 } },
    server: { port: 0 },
    logDestination: { write: () => true } as any,
  });
  server.http.on('connection', watch);
  for (const name of [
    'attempt:start',
    'attempt:success',
    'attempt:usage',
    'attempt:end',
    'attempt:failure',
  ] as const)
    server.router.on(name, () => seen.push(name));
  client = new OpenAI({ baseURL: `${await server.listen()}/v1`, apiKey: 'k', maxRetries: 0 });
});

afterAll(async () => {
  await server.close(500);
  await up.close();
});

const inFlight = () => server.router.snapshot().endpoints[0].stats.inFlight;

/** Streams a chat completion through lb-server and returns its text. */
async function streamText(extra: { stream_options?: { include_usage: boolean } } = {}): Promise<string> {
  let text = '';
  for await (const c of await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    ...extra,
  }))
    text += c.choices[0]?.delta?.content ?? '';
  return text;
}

describe('answering as a 2xx settles the attempt', () => {
  it('a JSON answer: the router still hears success before the usage it reports', async () => {
    seen.length = 0;
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.choices[0].message.content).toBe('Hello from up');
    await new Promise((res) => setImmediate(res));
    expect(seen).toEqual(['attempt:start', 'attempt:success', 'attempt:usage']);
    expect(inFlight()).toBe(0);
  });

  it('a whole stream in one write: success, then the end of the held stream and its usage', async () => {
    up.next({
      type: 'custom',
      handle: (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(
          chunk({ role: 'assistant', content: 'one' }) +
            chunk({ content: ' write' }, 'stop') +
            `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\ndata: [DONE]\n\n`,
        );
      },
    });
    seen.length = 0;
    expect(await streamText({ stream_options: { include_usage: true } })).toBe('one write');
    await new Promise((res) => setImmediate(res));
    expect(seen).toEqual(['attempt:start', 'attempt:success', 'attempt:end', 'attempt:usage']);
    expect(inFlight()).toBe(0);
  });

  it("a stream's first events leave with the headers at once, not at the end of the step", async () => {
    writes = [];
    try {
      up.next({
        type: 'custom',
        handle: (_req, res) => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          // The whole stream in one write: lb reads it in one step.
          res.end(
            `${chunk({ role: 'assistant', content: 'first' })}${chunk({ content: ' second' }, 'stop')}data: [DONE]\n\n`,
          );
        },
      });
      expect(await streamText()).toBe('first second');
      const w = writes!;
      const head = w.findIndex((w) => w.startsWith('HTTP/1.1 200'));
      expect(head).toBeGreaterThanOrEqual(0);
      // Headers and the first block (the upstream's first read: here the whole stream) in one write, which did not
      // wait for the stream's end (the last chunk of the chunked encoding) to be processed in the same step.
      expect(w[head]).toContain('"content":"first"');
      expect(w[head]).not.toContain('\r\n0\r\n\r\n');
      expect(w.slice(head + 1).join('')).toMatch(/\r\n0\r\n\r\n$|^0\r\n\r\n$/);
    } finally {
      writes = undefined;
    }
  });

  it('a paced stream the same way, and a failed first attempt is not answered early', async () => {
    up.next({ type: 'stream', chunks: ['a', 'b', 'c'], intervalMs: 5 });
    seen.length = 0;
    expect(await streamText()).toBe('abc');
    await new Promise((res) => setImmediate(res));
    // lb asks the upstream for the stream's usage (cost) even when the client did not: the usage is reported too.
    expect(seen).toEqual(['attempt:start', 'attempt:success', 'attempt:end', 'attempt:usage']);
    expect(inFlight()).toBe(0);
    // A 500 is the router's to judge (retry, fail over, give up): nothing reaches the client before it has.
    const fail = { type: 'status', status: 500 } as const;
    up.next(fail, fail, fail, fail, fail);
    seen.length = 0;
    const err = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e);
    expect(seen[0]).toBe('attempt:start');
    expect(seen).toContain('attempt:failure');
    expect(seen).not.toContain('attempt:success');
    expect(err.status).toBeGreaterThanOrEqual(500);
    expect(inFlight()).toBe(0);
  });
});
