import { request } from 'node:http';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// Headers a message's `Connection` header names are hop-by-hop (RFC 9110 §7.6.1): lb-server forwards none of them,
// in either direction.

const key = fakeKey('hop');
let up: FakeUpstream;
let lb: LbServer;
let base: string;
beforeAll(async () => {
  up = await startFakeUpstream({ name: 'up', acceptKeys: [key] });
  lb = createServer({
    router: { endpoints: [{ id: 'up', url: up.url, apiKey: key }] },
    logDestination: { write: () => true } as never,
    server: { port: 0 },
  });
  base = await lb.listen();
});
afterAll(async () => {
  await lb?.close(100);
  await up?.close();
});

/** A raw request (fetch may not set `Connection`). */
function post(path: string, headers: Record<string, string>, body: string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = request(`${base}${path}`, { method: 'POST', headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    },
  );
}

describe('hop-by-hop headers named in Connection', () => {
  it('the client’s are not forwarded upstream; ordinary ones are', async () => {
    const seen = up.requests.length;
    const r = await post(
      '/v1/chat/completions',
      {
        'content-type': 'application/json',
        connection: 'keep-alive, X-Hop-Secret, x-other-hop',
        'x-hop-secret': 'for the next hop only',
        'x-other-hop': '1',
        'x-ordinary': 'kept',
      },
      JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    );
    expect(r.status).toBe(200);
    const sent = up.requests[seen].headers;
    expect(sent['x-hop-secret']).toBeUndefined();
    expect(sent['x-other-hop']).toBeUndefined();
    expect(sent['x-ordinary']).toBe('kept');
  });

  it('the upstream’s are not passed to the client', async () => {
    up.setDefault({
      type: 'ok',
      headers: { connection: 'keep-alive, x-up-hop', 'x-up-hop': 'internal', 'x-up-ordinary': 'kept' },
    });
    try {
      const r = await post(
        '/v1/chat/completions',
        { 'content-type': 'application/json' },
        JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      );
      expect(r.status).toBe(200);
      expect(r.headers['x-up-hop']).toBeUndefined();
      expect(r.headers['x-up-ordinary']).toBe('kept');
    } finally {
      up.setDefault({ type: 'ok' });
    }
  });
});
