import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBody } from '../src/http.js';
import { createServer, type LbServer } from '../src/index.js';

// The request body's edges: read from the stream's events and routed in the same step (no promise in between).
let up: FakeUpstream;
let server: LbServer;
let base: string;
const key = fakeKey('body');
const LIMIT = 2048;

beforeAll(async () => {
  up = await startFakeUpstream({ name: 'up', acceptKeys: [key] });
  server = createServer({
    router: { endpoints: [{ id: 'up', url: up.url, apiKey: key }] },
    server: { port: 0, bodyLimitBytes: LIMIT },
    logDestination: { write: () => true } as any,
  });
  base = await server.listen();
});

afterAll(async () => {
  await up.close();
});

const post = (body: string, headers: Record<string, string> = {}) =>
  fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });

describe('request bodies', () => {
  it('answers an empty body with a 400 in OpenAI error JSON, sending nothing upstream', async () => {
    const before = up.requests.length;
    const r = await post('');
    expect(r.status).toBe(400);
    const j = (await r.json()) as { error: { code: string; message: string } };
    expect(j.error.code).toBe('invalid_request');
    expect(j.error.message).toMatch(/body is empty/);
    expect(up.requests.length).toBe(before);
  });

  it('answers a body over the limit with a 413 the client gets to read, sending nothing upstream', async () => {
    const before = up.requests.length;
    const big = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x'.repeat(LIMIT) }],
    });
    const r = await post(big);
    expect(r.status).toBe(413);
    const j = (await r.json()) as { error: { code: string; message: string } };
    expect(j.error.code).toBe('request_too_large');
    expect(j.error.message).toContain(`${LIMIT} bytes`);
    expect(up.requests.length).toBe(before);
  });

  it('a client that goes away halfway through its body costs no upstream request and leaves nothing in flight', async () => {
    const before = up.requests.length;
    const { port } = new URL(base);
    await new Promise<void>((resolve, reject) => {
      const s = connect(Number(port), '127.0.0.1', () => {
        // Gone once the server has the request's head (and the half body with it), not after a guessed delay.
        server.http.once('request', () => setImmediate(() => s.destroy()));
        s.write(
          'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"model":"gpt-4o-mini","mess',
        );
      });
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    // The proxy still serves, and the half-sent request never reached the upstream.
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'k', maxRetries: 0 });
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.choices[0].message.content).toBe('Hello from up');
    expect(up.requests.length).toBe(before + 1);
    // Every request (the abandoned one included) was counted done: the drain has nothing to wait for.
    expect(await server.close(1000)).toEqual({ drained: true, cut: 0 });
  });
});

describe('readBody', () => {
  const sinkOf = () => {
    const got: (Buffer | null | Error)[] = [];
    return {
      got,
      sink: {
        onBody: (b: Buffer | null) => got.push(b),
        onBodyError: (e: Error) => got.push(e),
      },
    };
  };
  const tick = () => new Promise((r) => setImmediate(r));

  it('hands the body over with the last byte its content-length announced, before the stream ends', async () => {
    const req = Object.assign(new PassThrough(), { headers: { 'content-length': '10' } });
    const { got, sink } = sinkOf();
    readBody(req as any, 100, sink);
    req.write('hello');
    await tick();
    expect(got).toEqual([]);
    req.write('world');
    await tick();
    expect(got.map(String)).toEqual(['helloworld']);
    req.end();
    await tick();
    expect(got).toHaveLength(1);
  });

  it('without a content-length, at the end of the stream; over the limit, null', async () => {
    const req = Object.assign(new PassThrough(), { headers: {} });
    const { got, sink } = sinkOf();
    readBody(req as any, 100, sink);
    req.write('hello');
    req.write('world');
    await tick();
    expect(got).toEqual([]);
    req.end();
    await tick();
    expect(got.map(String)).toEqual(['helloworld']);

    const big = Object.assign(new PassThrough(), { headers: {} });
    const over = sinkOf();
    readBody(big as any, 8, over.sink);
    big.write('0123456789');
    await tick();
    expect(over.got).toEqual([null]);
  });
});
