import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeUpstream, fakeKey, startFakeUpstream, streamedText } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

let a: FakeUpstream;
let b: FakeUpstream;
let c: FakeUpstream;
let server: LbServer;
let client: OpenAI;
let base: string;
const keys = { a: fakeKey('alpha'), b: fakeKey('bravo'), c: fakeKey('charlie') };

beforeAll(async () => {
  [a, b, c] = await Promise.all([
    startFakeUpstream({ name: 'a', acceptKeys: [keys.a] }),
    startFakeUpstream({ name: 'b', acceptKeys: [keys.b] }),
    startFakeUpstream({ name: 'c', acceptKeys: [keys.c] }),
  ]);
  server = createServer({
    router: {
      endpoints: [
        { id: 'a', url: a.url, apiKey: keys.a, priority: 1 },
        { id: 'b', url: b.url, apiKey: keys.b, priority: 2 },
        { id: 'c', url: c.url, apiKey: keys.c, priority: 3, modelMap: { 'gpt-4o-mini': 'mini-on-c' } },
      ],
      backoff: { initialMs: 1, maxMs: 5 },
    },
    server: { port: 0, streamIdleTimeoutMs: 400, streamFirstByteTimeoutMs: 400, timeoutMs: 600 },
    logDestination: { write: () => true } as any,
  });
  base = await server.listen();
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'client-key', maxRetries: 0 });
});

afterAll(async () => {
  await server.close(100);
  await Promise.all([a.close(), b.close(), c.close()]);
});

afterEach(() => {
  for (const id of ['a', 'b', 'c']) server.router.setEndpointHealth(id, true);
});

describe('proxying', () => {
  it('sends to the highest priority endpoint with its own key', async () => {
    const before = a.count('/chat/completions');
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.choices[0].message.content).toBe('Hello from a');
    expect(a.count('/chat/completions')).toBe(before + 1);
    const last = a.requests.at(-1)!;
    expect(last.headers.authorization).toBe(`Bearer ${keys.a}`);
  });

  it('fails over on 500, on reset and on timeout', async () => {
    a.next({ type: 'status', status: 500 });
    let r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.system_fingerprint).toBe('b');
    a.next({ type: 'reset' });
    r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.system_fingerprint).toBe('b');
    a.next({ type: 'hang' });
    r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.system_fingerprint).toBe('b');
  });

  it('tells the client which endpoint answered and after how many attempts', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(data.choices[0].message.content).toBe('Hello from a');
    expect(response.headers.get('x-lb-endpoint')).toBe('a');
    expect(response.headers.get('x-lb-attempts')).toBe('1');

    a.next({ type: 'status', status: 500 });
    const failed = await client.chat.completions
      .create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'x' }] })
      .withResponse();
    expect(await streamedText(failed.data)).toBe('Hello from b');
    expect(failed.response.headers.get('x-lb-endpoint')).toBe('b');
    expect(failed.response.headers.get('x-lb-attempts')).toBe('2');

    // Every attempt failed (one endpoint left, tried 1 + maxRetries times): the error says how many were made.
    server.router.setEndpointHealth('b', false);
    server.router.setEndpointHealth('c', false);
    for (let i = 0; i < 4; i++) a.next({ type: 'status', status: 500 });
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }),
    });
    expect(res.status).toBe(502);
    expect(res.headers.get('x-lb-attempts')).toBe('4');
    expect(res.headers.get('x-lb-request-id')).toMatch(/^req_/);
    expect(res.headers.get('x-lb-endpoint')).toBeNull();
  });

  it("logs the upstream's request id and the client's own beside the gateway's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-reqlog-'));
    const path = join(dir, 'requests.jsonl');
    const logged = createServer({
      router: { endpoints: [{ id: 'a', url: a.url, apiKey: keys.a }] },
      server: { port: 0, requestLog: { enabled: true, path } },
      logDestination: { write: () => true } as any,
    });
    try {
      const sdk = new OpenAI({ baseURL: `${await logged.listen()}/v1`, apiKey: 'k', maxRetries: 0 });
      const { response } = await sdk.chat.completions
        .create(
          { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
          { headers: { 'x-request-id': 'trace-7' } },
        )
        .withResponse();
      const upstreamId = response.headers.get('x-request-id');
      expect(upstreamId).toMatch(/^req_a_/);
      await logged.close(100);
      const [line] = readFileSync(path, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(line).toMatchObject({
        endpoint: 'a',
        upstreamRequestId: upstreamId,
        clientRequestId: 'trace-7',
      });
      expect(line.requestId).toMatch(/^req_/);
      expect(line.requestId).not.toBe(upstreamId);
    } finally {
      await logged.close(100);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves its own headers out with responseHeaders: false, and refuses a setting that is not a boolean', async () => {
    const quiet = createServer({
      router: { endpoints: [{ id: 'a', url: a.url, apiKey: keys.a }] },
      server: { port: 0, responseHeaders: false },
      logDestination: { write: () => true } as any,
    });
    try {
      const sdk = new OpenAI({ baseURL: `${await quiet.listen()}/v1`, apiKey: 'k', maxRetries: 0 });
      const { data, response } = await sdk.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
        .withResponse();
      expect(data.choices[0].message.content).toBe('Hello from a');
      for (const h of ['x-lb-endpoint', 'x-lb-attempts']) expect(response.headers.get(h)).toBeNull();
    } finally {
      await quiet.close(100);
    }
    expect(() =>
      createServer({
        router: { endpoints: [{ id: 'a', url: a.url, apiKey: keys.a }] },
        server: { responseHeaders: 'no' as any },
      }),
    ).toThrow('server.responseHeaders: expected true or false, received "no"');
  });

  it('routes by the x-lb-tags header, keeps it from the upstream, and says when no endpoint has the tags', async () => {
    const tagged = createServer({
      router: {
        endpoints: [
          { id: 'a', url: a.url, apiKey: keys.a, priority: 1, tags: ['eu'] },
          { id: 'b', url: b.url, apiKey: keys.b, priority: 2, tags: ['us', 'fast'] },
        ],
      },
      server: { port: 0 },
      logDestination: { write: () => true } as any,
    });
    try {
      const sdk = new OpenAI({ baseURL: `${await tagged.listen()}/v1`, apiKey: 'k', maxRetries: 0 });
      const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };
      const plain = await sdk.chat.completions.create(body);
      expect(plain.choices[0].message.content).toBe('Hello from a');
      const { data, response } = await sdk.chat.completions
        .create(body, { headers: { 'x-lb-tags': 'fast, us' } })
        .withResponse();
      expect(data.choices[0].message.content).toBe('Hello from b');
      expect(response.headers.get('x-lb-endpoint')).toBe('b');
      expect(b.requests.at(-1)!.headers['x-lb-tags']).toBeUndefined();
      const err = await sdk.chat.completions
        .create(body, { headers: { 'x-lb-tags': 'eu,fast' } })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('no_endpoint_with_tags');
      expect((err as Error).message).toContain('"eu","fast"');
      // Tags every endpoint lacks only while it is down: that is an outage, not a bad request.
      tagged.router.setEndpointHealth('b', false);
      const down = await sdk.chat.completions
        .create(body, { headers: { 'x-lb-tags': 'us' } })
        .catch((e: unknown) => e);
      expect((down as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    } finally {
      await tagged.close(100);
    }
  });

  it('maps the model for the endpoint that renames it', async () => {
    server.router.setEndpointHealth('a', false);
    server.router.setEndpointHealth('b', false);
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.system_fingerprint).toBe('c');
    expect(c.requests.at(-1)!.json.model).toBe('mini-on-c');
  });

  it('passes client errors through as they came', async () => {
    a.next({
      type: 'status',
      status: 400,
      body: { error: { message: 'bad messages', type: 'invalid_request_error', code: 'x', param: null } },
    });
    const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.message).toContain('bad messages');
  });

  it('streams chunk by chunk and fails over before the first byte', async () => {
    a.next({ type: 'stream', errorEvent: { error: { message: 'Overloaded', type: 'overloaded_error' } } });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(await streamedText(stream)).toBe('Hello from b');
  });

  it('ends a stream that breaks mid-way with an error the SDK raises', async () => {
    a.next({ type: 'stream', chunks: ['one', 'two', 'three'], dropAfter: 2, intervalMs: 30 });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    let text = '';
    const err = await (async () => {
      for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
    })().catch((e) => e);
    expect(text.startsWith('one')).toBe(true);
    expect(text).not.toContain('three');
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(String(err.message)).toMatch(/broke off/);
  });

  it('ends a stalled stream with an error after the idle timeout', async () => {
    a.next({ type: 'stream', chunks: ['one', 'two'], intervalMs: 3000 });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    let text = '';
    const err = await (async () => {
      for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
    })().catch((e) => e);
    expect(text).toBe('one');
    expect(String(err.message)).toMatch(/stalled/);
  });

  it('answers 503 in OpenAI shape when every endpoint is down', async () => {
    for (const id of ['a', 'b', 'c']) server.router.setEndpointHealth(id, false);
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }),
    });
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body.error.type).toBe('server_error');
    expect(JSON.stringify(body)).not.toContain(keys.a.slice(10));
  });

  it('passes multipart audio and binary speech', async () => {
    const file = new File([Buffer.from('RIFF....WAVE')], 'clip.wav', { type: 'audio/wav' });
    const t = await client.audio.transcriptions.create({ file, model: 'whisper-1' });
    expect(t.text).toBe('a heard clip.wav');
    const speech = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'hi' });
    expect(Buffer.from(await speech.arrayBuffer()).toString()).toBe('ID3-fake-mp3-from-a');
  });

  it('maps the model inside a multipart body, leaving the file part byte for byte', async () => {
    server.router.setEndpointHealth('a', false);
    server.router.setEndpointHealth('b', false);
    const audio = Buffer.from([
      0x52, 0x49, 0x46, 0x46, 0x00, 0xff, 0x0d, 0x0a, 0x2d, 0x2d, 0x57, 0x41, 0x56, 0x45,
    ]);
    const file = new File([audio], 'clip.wav', { type: 'audio/wav' });
    const t = await client.audio.transcriptions.create({ file, model: 'gpt-4o-mini' });
    expect(t.text).toBe('c heard clip.wav');
    const raw = c.requests.at(-1)!.raw;
    const text = raw.toString('latin1');
    expect(text).toMatch(/name="model"\r\n\r\nmini-on-c\r\n/);
    expect(text).not.toContain('gpt-4o-mini');
    expect(raw.indexOf(audio)).toBeGreaterThan(0);
    expect(Number(c.requests.at(-1)!.headers['content-length'] ?? raw.length)).toBe(raw.length);
  });

  it('refuses bad input with clear 4xx and keeps serving', async () => {
    const post = (body: string, ct = 'application/json') =>
      fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': ct }, body });
    let res = await post('{"model": "gpt-4o-mini", ');
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('invalid_json');
    res = await post('model=x', 'text/plain');
    expect(res.status).toBe(415);
    res = await post(JSON.stringify({ model: 'gpt-4o-mini', pad: 'x'.repeat(30 * 1024 * 1024) }));
    expect(res.status).toBe(413);
    const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
    expect(r.data).toHaveLength(1);
  });
});

describe('observability routes', () => {
  it('serves health, metrics and stats with no key in them', async () => {
    await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x' }],
    });
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    const hb = await health.text();
    expect(JSON.parse(hb).endpoints.map((e: { id: string }) => e.id)).toEqual(['a', 'b', 'c']);
    const v1 = await fetch(`${base}/v1/health`);
    expect(v1.status).toBe(200);
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    const mt = await metrics.text();
    expect(mt).toMatch(/^lb_/m);
    const stats = await fetch(`${base}/stats`);
    expect(stats.status).toBe(200);
    const st = await stats.text();
    for (const k of Object.values(keys)) {
      for (const text of [hb, mt, st]) expect(text).not.toContain(k);
    }
  });

  it('reports 503 on /health when nothing can serve', async () => {
    for (const id of ['a', 'b', 'c']) server.router.setEndpointHealth(id, false);
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(503);
    expect((await health.json()).status).toBe('unhealthy');
  });
});
