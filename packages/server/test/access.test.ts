import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

let up: FakeUpstream;
let server: LbServer;
let base: string;
const upstreamKey = fakeKey('upstream');
const clientKey = 'lb-client-key-0123456789';
const adminKey = 'lb-admin-key-0123456789';

beforeAll(async () => {
  up = await startFakeUpstream({ name: 'up', acceptKeys: [upstreamKey] });
  server = createServer({
    router: { endpoints: [{ id: 'up', url: up.url, apiKey: upstreamKey }], models: undefined },
    server: {
      port: 0,
      apiKeys: [clientKey],
      adminKey,
      clientRateLimit: { enabled: true, requests: 3, windowMs: 60_000 },
    },
    logDestination: { write: () => true } as any,
  });
  base = await server.listen();
});

afterAll(async () => {
  await server.close(100);
  await up.close();
});

describe('gateway access', () => {
  it('refuses a missing or wrong client key with 401 and never echoes it whole', async () => {
    const wrong = 'sk-wrong-key-abcdefghijklmnop';
    const err = await new OpenAI({ baseURL: `${base}/v1`, apiKey: wrong, maxRetries: 0 }).chat.completions
      .create({ model: 'gpt-4o-mini', messages: [] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err.message).not.toContain(wrong);
    const res = await fetch(`${base}/v1/embeddings`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(401);
    expect(up.count()).toBe(0);
  });

  it('limits each client and answers 429 with Retry-After', async () => {
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: clientKey, maxRetries: 0 });
    for (let i = 0; i < 3; i++)
      await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
    expect(up.requests.at(-1)!.headers.authorization).toBe(`Bearer ${upstreamKey}`);
    const res = await fetch(`${base}/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${clientKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-embedding-3-small', input: 'x' }),
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await res.json()).error.type).toBe('rate_limit_error');
  });

  it('guards admin routes with the admin key and toggles endpoints', async () => {
    let res = await fetch(`${base}/admin/endpoints/up/disable`, { method: 'POST' });
    expect(res.status).toBe(401);
    res = await fetch(`${base}/admin/endpoints/up/disable`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    expect(server.router.getHealth('up')?.status).toBe('disabled');
    res = await fetch(`${base}/admin/endpoints/nope/enable`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    });
    expect(res.status).toBe(404);
    res = await fetch(`${base}/admin/endpoints/up/enable`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    expect(server.router.getHealth('up')?.status).toBe('healthy');
    res = await fetch(`${base}/admin/reload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    });
    expect(res.status).toBe(501);
  });

  it('answers liveness and unknown routes without a key', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect((await res.json()).status).toBe('ok');
    const nf = await fetch(`${base}/nope`);
    expect(nf.status).toBe(404);
    expect((await nf.json()).error.message).toContain('/nope');
  });
});
