import type { ServerResponse } from 'node:http';
import { maskKey } from '@lb/core';
import { type FakeUpstream, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// Characters that base64 and URL encoding both change, so that every form differs from the raw key.
const upstreamKey = 'sk-proj-Up+stream/Key=0123456789abcdef~N0IA>';
const clientKey = 'lb-client-key-0123456789';
const forms = (k: string) => [
  k,
  Buffer.from(k).toString('base64').replace(/=+$/, ''),
  Buffer.from(k).toString('base64url'),
  encodeURIComponent(k),
];
const leaks = (text: string) => [...forms(upstreamKey), ...forms(clientKey)].filter((f) => text.includes(f));

const JSON_HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${clientKey}` };
const chat = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

/** An upstream error quoting the key in every form, with headers that echo it and debug headers. */
function echoing(status: number) {
  return {
    type: 'custom' as const,
    handle: (_req: unknown, res: ServerResponse) => {
      const body = JSON.stringify({
        error: {
          message: `Bad key ${upstreamKey}; b64 ${forms(upstreamKey)[1]}; url ${forms(upstreamKey)[3]}; client ${clientKey}`,
          type: 'invalid_request_error',
          code: 'echo',
        },
      });
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-echo-key': `Bearer ${upstreamKey}`,
        'x-echo-b64': forms(upstreamKey)[1],
        'x-debug-trace': 'internal-host-17',
        'server-timing': 'db;dur=53',
        connection: 'x-hop',
        'x-hop': 'hop-by-hop value',
        'x-request-id': 'req-upstream-1',
      });
      res.end(body);
    },
  };
}

describe('upstream answers never hand a key to the client', () => {
  let up: FakeUpstream;
  let server: LbServer;
  const logs: string[] = [];

  beforeAll(async () => {
    up = await startFakeUpstream({ name: 'up' });
    server = createServer({
      router: { endpoints: [{ id: 'e', url: up.url, apiKey: upstreamKey }] },
      server: { port: 0, apiKeys: [clientKey] },
      logDestination: { write: (l: string) => logs.push(String(l)) > 0 } as any,
      debug: 'lb:*',
    });
    await server.listen();
  });
  afterAll(async () => {
    await server.close(100);
    await up.close();
  });

  it.each([400, 404, 422])(
    'a %i body and its headers are masked; debug and Connection-named headers dropped',
    async (status) => {
      up.next(echoing(status));
      const res = await fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: JSON_HEADERS,
        body: chat,
      });
      expect(res.status).toBe(status);
      const text = await res.text();
      expect(leaks(text)).toEqual([]);
      expect(text).toContain(maskKey(upstreamKey));
      expect(JSON.parse(text).error.code).toBe('echo');
      const headers = JSON.stringify([...res.headers]);
      expect(leaks(headers)).toEqual([]);
      expect(res.headers.get('x-echo-key')).toBe(`Bearer ${maskKey(upstreamKey)}`);
      expect(res.headers.get('x-debug-trace')).toBeNull();
      expect(res.headers.get('server-timing')).toBeNull();
      expect(res.headers.get('x-hop')).toBeNull();
      expect(res.headers.get('x-request-id')).toBe('req-upstream-1');
    },
  );

  it('through the SDK, the error message carries the mask only', async () => {
    up.next(echoing(400));
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: clientKey, maxRetries: 0 });
    const err = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(leaks(err.message)).toEqual([]);
    expect(err.message).toContain(maskKey(upstreamKey));
  });

  it('a streamed 4xx with the key split across chunks is masked', async () => {
    const event = `data: {"error":{"message":"key ${upstreamKey} is not allowed","type":"invalid_request_error"}}\n\n`;
    const split = event.indexOf(upstreamKey) + 10;
    up.next({
      type: 'custom',
      handle: (_req, res) => {
        res.writeHead(400, { 'content-type': 'text/event-stream' });
        // one byte at a time around the key, then the rest
        res.write(event.slice(0, split - 3));
        let i = split - 3;
        const tick = () => {
          if (i < split + 3) {
            res.write(event[i++]);
            setImmediate(tick);
          } else res.end(event.slice(i));
        };
        tick();
      },
    });
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [], stream: true }),
    });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(leaks(text)).toEqual([]);
    expect(text).toBe(event.replace(upstreamKey, maskKey(upstreamKey)));
  });

  it('a stream that opens with an error event quoting the key: client, bus and log see the mask', async () => {
    const failures: string[] = [];
    const off = server.router.on('attempt:failure', (e) => failures.push(JSON.stringify(e)));
    up.next({
      type: 'stream',
      errorEvent: {
        error: {
          message: `key ${upstreamKey} (${forms(upstreamKey)[1]}) rejected`,
          type: 'invalid_request_error',
        },
      },
    });
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [], stream: true }),
    });
    const text = await res.text();
    off();
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(leaks(text)).toEqual([]);
    expect(leaks(failures.join('\n'))).toEqual([]);
    expect(leaks(logs.join('\n'))).toEqual([]);
  });

  it('2xx answers keep their content-length and body untouched', async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: chat,
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
  });
});

describe('Redactor.sink: any chunking gives the same masked bytes', () => {
  it('for every chunk size from 1 to the body length', async () => {
    const { Redactor } = await import('../src/redact.js');
    const r = new Redactor([upstreamKey, clientKey]);
    const body = `a${upstreamKey}b${forms(upstreamKey)[1]}c${clientKey}${clientKey}${encodeURIComponent(upstreamKey)}z`;
    const expected = r.text(body);
    expect(leaks(expected)).toEqual([]);
    for (let size = 1; size <= body.length; size++) {
      const out: Buffer[] = [];
      const sink = r.sink({ data: (c) => out.push(Buffer.from(c)) > 0, end() {}, error() {} });
      for (let i = 0; i < body.length; i += size) sink.data(Buffer.from(body.slice(i, i + size)));
      sink.end();
      expect(Buffer.concat(out).toString(), `chunks of ${size}`).toBe(expected);
    }
  });
});
