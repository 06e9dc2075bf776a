import { request as httpRequest, createServer as httpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer, type ServerSettings } from '../src/index.js';

const upstreamKey = fakeKey('upstream');
const quiet = { write: () => true } as any;

/** A 20-line reverse proxy on 127.0.0.1, as nginx/caddy on the same host: every client reaches lb from loopback. */
async function reverseProxy(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const t = new URL(target);
  const s: Server = httpServer((req, res) => {
    const up = httpRequest(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

/** One raw request (node's client sends the path as given: no `..` resolution, unlike fetch). */
function raw(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

const JSON_POST = { 'content-type': 'application/json' };

/** An lb-server with one endpoint on a fake upstream, for the tests of one `describe` (started before, closed after). */
function lbAround(settings: Partial<ServerSettings>): { up: FakeUpstream; server: LbServer } {
  const ctx = {} as { up: FakeUpstream; server: LbServer };
  beforeAll(async () => {
    ctx.up = await startFakeUpstream({ name: 'up' });
    ctx.server = createServer({
      router: { endpoints: [{ id: 'e', url: ctx.up.url, apiKey: upstreamKey }] },
      server: { port: 0, ...settings },
      logDestination: quiet,
    });
    await ctx.server.listen();
  });
  afterAll(async () => {
    await ctx.server.close(100);
    await ctx.up.close();
  });
  return ctx;
}

describe('admin never trusts the peer address (no admin key)', () => {
  let up: FakeUpstream;
  let server: LbServer;
  let proxy: { url: string; close(): Promise<void> };
  const clientKey = 'lb-client-key-0123456789';

  beforeAll(async () => {
    up = await startFakeUpstream({ name: 'up', acceptKeys: [upstreamKey] });
    server = createServer({
      router: { endpoints: [{ id: 'openai-1', url: up.url, apiKey: upstreamKey }] },
      server: { port: 0, apiKeys: [clientKey], opsPort: 0 },
      logDestination: quiet,
      reloadConfig: () => ({ endpoints: [{ id: 'openai-1', url: up.url, apiKey: upstreamKey }] }),
    });
    await server.listen();
    proxy = await reverseProxy(server.url!);
  });
  afterAll(async () => {
    await proxy.close();
    await server.close(100);
    await up.close();
  });

  it('through a reverse proxy on the same host, admin is off on the main port and says how to turn it on', async () => {
    for (const [method, path] of [
      ['GET', '/admin/endpoints'],
      ['POST', '/admin/endpoints/openai-1/disable'],
      ['POST', '/admin/reload'],
    ] as const) {
      for (const key of [undefined, 'wrong-key', clientKey]) {
        const res = await raw(
          proxy.url,
          method,
          path,
          key ? { ...JSON_POST, authorization: `Bearer ${key}` } : JSON_POST,
          method === 'POST' ? '{}' : undefined,
        );
        expect(res.status, `${method} ${path} ${res.text}`).toBe(404);
        const err = JSON.parse(res.text).error;
        expect(err.message).toContain('LB_ADMIN_KEY');
        expect(err.message).toContain('LB_OPS_PORT');
      }
    }
    expect(server.router.getHealth('openai-1')?.status).toBe('healthy');
    // valid clients are still served
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: clientKey, maxRetries: 0 });
    await expect(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }),
    ).resolves.toBeTruthy();
  });

  it('the operations listener (127.0.0.1 by default) serves admin without a key and proxies nothing', async () => {
    expect(server.opsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const list = await fetch(`${server.opsUrl}/admin/endpoints`);
    expect(list.status).toBe(200);
    expect(JSON.stringify(await list.json())).not.toContain(upstreamKey);
    const res = await fetch(`${server.opsUrl}/admin/endpoints/openai-1/disable`, {
      method: 'POST',
      headers: JSON_POST,
    });
    expect(res.status).toBe(200);
    expect(server.router.getHealth('openai-1')?.status).toBe('disabled');
    await fetch(`${server.opsUrl}/admin/endpoints/openai-1/enable`, { method: 'POST', headers: JSON_POST });
    expect(server.router.getHealth('openai-1')?.status).toBe('healthy');
    const reload = await fetch(`${server.opsUrl}/admin/reload`, { method: 'POST', headers: JSON_POST });
    expect(reload.status).toBe(200);
    const n = up.count();
    expect((await raw(server.opsUrl!, 'POST', '/v1/chat/completions', JSON_POST, '{}')).status).toBe(404);
    expect(up.count()).toBe(n);
  });

  it('state-changing admin routes refuse cross-site requests', async () => {
    const url = `${server.opsUrl}/admin/endpoints/openai-1/disable`;
    // a form/text POST from a page on another site: no preflight needed, so refused by content type
    let res = await raw(server.opsUrl!, 'POST', '/admin/endpoints/openai-1/disable', {
      'content-type': 'text/plain',
      origin: 'https://evil.example',
    });
    expect(res.status).toBe(403);
    res = await raw(server.opsUrl!, 'POST', '/admin/endpoints/openai-1/disable', {
      'content-type': 'text/plain',
    });
    expect(res.status).toBe(415);
    expect(JSON.parse(res.text).error.message).toContain('application/json');
    let r = await fetch(url, { method: 'POST', headers: { ...JSON_POST, 'sec-fetch-site': 'cross-site' } });
    expect(r.status).toBe(403);
    r = await fetch(url, { method: 'POST', headers: { ...JSON_POST, origin: 'https://evil.example' } });
    expect(r.status).toBe(403);
    expect(server.router.getHealth('openai-1')?.status).toBe('healthy');
    // the operator's own same-origin request goes through
    r = await fetch(url, {
      method: 'POST',
      headers: { ...JSON_POST, origin: server.opsUrl!, 'sec-fetch-site': 'same-origin' },
    });
    expect(r.status).toBe(200);
    await fetch(`${server.opsUrl}/admin/endpoints/openai-1/enable`, { method: 'POST', headers: JSON_POST });
  });

  it('bad percent-encoding in an admin path is 400, not 500', async () => {
    for (const id of ['%E0%A4%A', '%E0%A4', '%ZZ']) {
      const res = await raw(server.opsUrl!, 'POST', `/admin/endpoints/${id}/disable`, JSON_POST, '{}');
      expect(res.status).toBe(400);
      expect(JSON.parse(res.text).error.type).toBe('invalid_request_error');
    }
  });

  it('operations routes need a key on the main port; /health stays a bare probe; the ops listener shows all', async () => {
    for (const p of ['/metrics', '/stats']) {
      const res = await fetch(`${proxy.url}${p}`);
      expect(res.status).toBe(401);
      expect((await res.json()).error.message).toContain('LB_OPS_PORT');
      const ok = await fetch(`${proxy.url}${p}`, { headers: { authorization: `Bearer ${clientKey}` } });
      expect(ok.status).toBe(200);
      expect((await fetch(`${server.opsUrl}${p}`)).status).toBe(200);
    }
    for (const p of ['/health', '/healthz', '/v1/health']) {
      const bare = await fetch(`${proxy.url}${p}`);
      expect(bare.status).toBe(200);
      expect(await bare.json()).toEqual({ status: 'healthy' });
    }
    const detail = await (await fetch(`${server.opsUrl}/health`)).json();
    expect(detail.endpoints).toHaveLength(1);
    expect((await fetch(`${proxy.url}/livez`)).status).toBe(200);
    // a probe still sees the status code
    server.router.setEndpointHealth('openai-1', false, 'test');
    const down = await fetch(`${proxy.url}/health`);
    expect(down.status).toBe(503);
    expect(Object.keys(await down.json())).toEqual(['status']);
    server.router.setEndpointHealth('openai-1', true, 'test');
  });
});

describe('admin with an admin key', () => {
  const adminKey = 'lb-admin-key-0123456789';
  const lb = lbAround({ apiKeys: ['client-key-0001'], adminKey, opsPort: 0 });

  it('a wrong key from loopback is refused on both listeners; the right one works on both', async () => {
    for (const base of [lb.server.url!, lb.server.opsUrl!]) {
      for (const h of [{}, { 'x-admin-key': 'nope' }, { authorization: 'Bearer client-key-0001' }] as Record<
        string,
        string
      >[]) {
        const res = await fetch(`${base}/admin/endpoints`, { headers: h });
        expect(res.status).toBe(401);
      }
      expect((await fetch(`${base}/admin/endpoints`, { headers: { 'x-admin-key': adminKey } })).status).toBe(
        200,
      );
    }
    // the admin key also reads the operations routes on the main port
    expect((await fetch(`${lb.server.url}/metrics`, { headers: { 'x-admin-key': adminKey } })).status).toBe(
      200,
    );
  });
});

describe('paths never leave their prefix', () => {
  const lb = lbAround({});

  it.each([
    '/v1/../__reset',
    '/v1/%2e%2e/x',
    '/v1/%2E%2e/x',
    '/v1/.%2e/__reset',
    '/chat/../../__control',
    '/chat/../embeddings',
    '/v1/chat/../../../__reset',
    '/v1/chat/completions%2f..%2f..%2f__reset',
    '/v1/chat/completions%5c..%5c__reset',
    '/v1\\..\\__reset',
    '/v1/%252e%252e/__reset',
    '/v1/chat/%00/completions',
    '/v1/chat/%E0%A4%A/completions',
  ])('%s → 400 in OpenAI shape, nothing forwarded', async (path) => {
    const n = lb.up.requests.length;
    const res = await raw(lb.server.url!, 'POST', path, JSON_POST, '{}');
    expect(res.status).toBe(400);
    const err = JSON.parse(res.text).error;
    expect(err.type).toBe('invalid_request_error');
    expect(typeof err.message).toBe('string');
    expect(lb.up.requests.length).toBe(n);
  });

  it('dot segments that stay inside the prefix are resolved before routing', async () => {
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [] });
    for (const path of [
      '/v1/chat/./completions',
      '/v1/chat/x/../completions',
      '/v1/chat/x/%2e%2e/completions',
    ]) {
      const res = await raw(lb.server.url!, 'POST', path, JSON_POST, body);
      expect(res.status).toBe(200);
      expect(lb.up.requests.at(-1)!.path).toBe('/v1/chat/completions');
    }
  });
});

describe('per-client limits key on the whole key', () => {
  const lb = lbAround({
    // both under 16 characters: their masks are the same `***`
    apiKeys: ['alice-key-0001', 'bobby-key-0002', 'sk-proj-aaaaXYZW1234', 'sk-proj-bbbbXYZW1234'],
    clientRateLimit: { enabled: true, requests: 2, windowMs: 60_000 },
  });

  it.each([
    ['alice-key-0001', 'bobby-key-0002'],
    // same first 7 and last 4 characters: the same mask `sk-proj...1234`
    ['sk-proj-aaaaXYZW1234', 'sk-proj-bbbbXYZW1234'],
  ])('%s spending its limit leaves %s untouched', async (first, second) => {
    const ask = (key: string) =>
      new OpenAI({ baseURL: `${lb.server.url}/v1`, apiKey: key, maxRetries: 0 }).chat.completions
        .create({ model: 'gpt-4o-mini', messages: [] })
        .then(
          () => 200,
          (e) => e.status as number,
        );
    expect([await ask(first), await ask(first), await ask(first)]).toEqual([200, 200, 429]);
    expect(await ask(second)).toBe(200);
  });
});

describe('the HTTP front answers in OpenAI shape', () => {
  const lb = lbAround({ maxInflightBodyBytes: 1_000_000 });

  /** Writes raw bytes on a fresh connection and resolves with everything the server sent until it closed. */
  const rawSocket = (bytes: string) =>
    new Promise<string>((resolve, reject) => {
      const u = new URL(lb.server.url!);
      const s = connect(Number(u.port), u.hostname, () => s.write(bytes));
      let got = '';
      s.setEncoding('utf8');
      s.on('data', (d) => (got += d));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });

  it('a malformed request gets 400 with a JSON error body', async () => {
    const got = await rawSocket('GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n');
    expect(got).toMatch(/^HTTP\/1\.1 400 /);
    const body = JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4));
    expect(body.error.type).toBe('invalid_request_error');
  });

  it('headers that do not arrive in time get 408 with a JSON error body', async () => {
    lb.server.http.headersTimeout = 300;
    lb.server.http.requestTimeout = 400;
    try {
      const got = await rawSocket('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n');
      expect(got).toMatch(/^HTTP\/1\.1 408 /);
      expect(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)).error.message).toContain('in time');
    } finally {
      lb.server.http.headersTimeout = 60_000;
      lb.server.http.requestTimeout = 300_000;
    }
  });

  it('caps the request bodies read at once: 503 with Retry-After when full, 413 for one larger than the cap', async () => {
    const u = new URL(lb.server.url!);
    // a slow client announcing 800 kB and sending a part of it
    const slow = connect(Number(u.port), u.hostname);
    await new Promise<void>((r) => slow.once('connect', () => r()));
    const pending = new Promise<string>((resolve) => {
      let got = '';
      slow.setEncoding('utf8');
      slow.on('data', (d) => (got += d));
      slow.on('end', () => resolve(got));
    });
    const head = `POST /v1/embeddings HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 800000\r\n\r\n`;
    const json = `{"model":"text-embedding-3-small","input":"${'x'.repeat(800000 - 45)}"}`;
    expect(json.length).toBe(800000);
    slow.write(head + json.slice(0, 1000));
    // wait until the server holds the first body's share
    await expect.poll(() => lb.server.inFlight).toBe(1);
    const big = 'x'.repeat(700_000);
    let res = await fetch(`${lb.server.url}/v1/embeddings`, {
      method: 'POST',
      headers: JSON_POST,
      body: JSON.stringify({ model: 'text-embedding-3-small', input: big }),
    });
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await res.json()).error.message).toContain('LB_MAX_INFLIGHT_BODY_BYTES');
    res = await fetch(`${lb.server.url}/v1/embeddings`, {
      method: 'POST',
      headers: JSON_POST,
      body: JSON.stringify({ model: 'text-embedding-3-small', input: 'x'.repeat(1_200_000) }),
    });
    expect(res.status).toBe(413);
    await res.arrayBuffer();
    // the slow body completes: its share is given back and the next large body goes through
    slow.write(json.slice(1000));
    expect(await pending).toMatch(/^HTTP\/1\.1 200 /);
    res = await fetch(`${lb.server.url}/v1/embeddings`, {
      method: 'POST',
      headers: JSON_POST,
      body: JSON.stringify({ model: 'text-embedding-3-small', input: big }),
    });
    expect(res.status).toBe(200);
  });
});
