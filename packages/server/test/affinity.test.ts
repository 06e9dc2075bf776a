import type { RouterConfig } from '@lb/core';
import { type FakeUpstream, fakeKey, startFakeUpstream, startRedis, type TestRedis } from '@lb/testing';
import Redis from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/index.js';
import { adapter, closeAfterTest, server } from './surfaces.js';

// Objects stay where they live (issue 25, part 2), on both surfaces: a file, a batch or a stored Response created on
// one endpoint is read, used and deleted there only; `x-lb-endpoint` pins any call.

const onB = { headers: { 'x-lb-endpoint': 'b' } };
const jsonl = () =>
  toFile(
    Buffer.from('{"custom_id":"1","method":"POST","url":"/v1/chat/completions","body":{}}\n'),
    'in.jsonl',
  );

describe.each([server, adapter])('objects stay where they live, through $name', (surface) => {
  const keys = { a: fakeKey('alpha'), b: fakeKey('bravo') };
  let a: FakeUpstream;
  let b: FakeUpstream;
  beforeAll(async () => {
    [a, b] = await Promise.all([
      startFakeUpstream({ name: 'a', acceptKeys: [keys.a] }),
      startFakeUpstream({ name: 'b', acceptKeys: [keys.b] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  afterEach(() => {
    a.setDefault({ type: 'ok' });
    b.setDefault({ type: 'ok' });
    a.requests.length = 0;
    b.requests.length = 0;
  });
  const config = (): RouterConfig => ({
    endpoints: [
      { id: 'a', url: a.url, apiKey: keys.a, priority: 1 },
      { id: 'b', url: b.url, apiKey: keys.b, priority: 2 },
    ],
    strategy: 'priority',
    maxRetries: 1,
    backoff: { initialMs: 1, maxMs: 1 },
  });
  const objectCallsOn = (u: FakeUpstream) =>
    u.requests.filter((r) => /\/(files|batches|responses)/.test(r.path)).map((r) => `${r.method} ${r.path}`);

  it('a file created on the priority-2 endpoint is read, used in a batch and deleted there while priority 1 is healthy', async () => {
    const { client } = await surface.start(config());
    const file = await client.files.create({ file: await jsonl(), purpose: 'batch' }, onB);
    expect(b.objects.has(file.id)).toBe(true);
    // No pin from here on: the id alone routes.
    const got = await client.files.retrieve(file.id).withResponse();
    expect(got.data.id).toBe(file.id);
    expect(got.response.headers.get('x-lb-endpoint')).toBe('b');
    expect(await (await client.files.content(file.id)).text()).toBe(`content of ${file.id} on b`);
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(batch.input_file_id).toBe(file.id);
    expect((await client.batches.retrieve(batch.id)).id).toBe(batch.id);
    expect((await client.batches.cancel(batch.id)).status).toBe('cancelling');
    expect((await client.files.delete(file.id)).deleted).toBe(true);
    expect(b.objects.has(file.id)).toBe(false);
    expect(objectCallsOn(a)).toEqual([]);
    expect(objectCallsOn(b)).toHaveLength(7);
    // Ordinary calls still go to priority 1.
    const chat = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(chat.response.headers.get('x-lb-endpoint')).toBe('a');
  });

  it('a stored Response is retrieved and continued (previous_response_id) on its endpoint', async () => {
    const { client } = await surface.start(config());
    const first = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi' }, onB);
    expect(first.id).toMatch(/^resp_b/);
    expect((await client.responses.retrieve(first.id)).id).toBe(first.id);
    const next = await client.responses.create({
      model: 'gpt-4o-mini',
      input: 'more',
      previous_response_id: first.id,
    });
    expect(next.id).toMatch(/^resp_b/);
    expect(objectCallsOn(a)).toEqual([]);
    // Not stored: nothing to remember, the call routes as any other.
    const loose = await client.responses.create({ model: 'gpt-4o-mini', input: 'x', store: false }, onB);
    const err = await client.responses.retrieve(loose.id).catch((e) => e);
    expect(err.status).toBe(404);
    expect(objectCallsOn(a)).toEqual([`GET /v1/responses/${loose.id}`]);
  });

  it('the endpoint holding the object is down: 503 naming it and its state, no failover to one that cannot know it', async () => {
    const { client } = await surface.start(config());
    const file = await client.files.create({ file: await jsonl(), purpose: 'batch' }, onB);
    b.setDefault({ type: 'status', status: 503 });
    const err = await client.files.retrieve(file.id).catch((e) => e);
    expect(err.status).toBe(503);
    expect(err.code).toBe('pinned_endpoint_unavailable');
    expect(err.message).toContain(file.id);
    expect(err.message, err.message).toMatch(/endpoint "b".*\(state: \w+, last attempt: \w+ 503\)/);
    expect(objectCallsOn(a)).toEqual([]);
  });

  it('x-lb-endpoint pins a list call; without it a list is answered by one endpoint (the one the router picks)', async () => {
    const { client } = await surface.start(config());
    const file = await client.files.create({ file: await jsonl(), purpose: 'batch' }, onB);
    const pinned = await client.files.list({}, onB);
    expect(pinned.data.map((f) => f.id)).toContain(file.id);
    const plain = await client.files.list().withResponse();
    expect(plain.response.headers.get('x-lb-endpoint')).toBe('a');
    expect(plain.data.data.map((f) => f.id)).not.toContain(file.id);
  });

  it('x-lb-endpoint naming no endpoint is a 400 in OpenAI shape; the header is never forwarded', async () => {
    const { client } = await surface.start(config());
    const err = await client.files.list({}, { headers: { 'x-lb-endpoint': 'nope' } }).catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.code).toBe('unknown_endpoint');
    await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
      onB,
    );
    expect(b.requests.at(-1)?.headers['x-lb-endpoint']).toBeUndefined();
    expect(a.requests).toHaveLength(0);
  });
});

describe('two lb-server replicas agree through Redis on where objects live', () => {
  let redis: TestRedis;
  let a: FakeUpstream;
  let b: FakeUpstream;
  const keys = { a: fakeKey('alpha'), b: fakeKey('bravo') };
  beforeAll(async () => {
    redis = await startRedis();
    [a, b] = await Promise.all([
      startFakeUpstream({ name: 'a', acceptKeys: [keys.a] }),
      startFakeUpstream({ name: 'b', acceptKeys: [keys.b] }),
    ]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
    await redis.stop();
  });

  const replica = async () => {
    const s = createServer({
      router: {
        endpoints: [
          { id: 'a', url: a.url, apiKey: keys.a, priority: 1 },
          { id: 'b', url: b.url, apiKey: keys.b, priority: 2 },
        ],
        strategy: 'priority',
      },
      breaker: { enabled: false },
      logDestination: { write: () => true } as never,
      server: { port: 0, redisUrl: redis.url },
    });
    const base = await s.listen();
    closeAfterTest(() => s.close(100));
    return new OpenAI({ baseURL: `${base}/v1`, apiKey: 'client-key', maxRetries: 0 });
  };

  it('a file created through one replica is read and deleted through the other, on its endpoint', async () => {
    const [one, two] = [await replica(), await replica()];
    const file = await one.files.create({ file: await jsonl(), purpose: 'batch' }, onB);
    const probe = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    try {
      expect(await probe.get(`lb:obj:${file.id}`)).toBe('b');
      const ttl = await probe.pttl(`lb:obj:${file.id}`);
      expect(ttl).toBeGreaterThan(29 * 86_400_000);
      expect((await two.files.retrieve(file.id)).id).toBe(file.id);
      expect((await two.files.delete(file.id)).deleted).toBe(true);
      expect(await probe.get(`lb:obj:${file.id}`)).toBeNull();
    } finally {
      probe.disconnect();
    }
    expect(a.requests.filter((r) => r.path.includes('/files'))).toEqual([]);
  });
});
