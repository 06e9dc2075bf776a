import net from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// RFC 9110 §15.2: a client must skip an interim 1xx it did not ask for. An upstream (or a proxy before it) that sends
// `100 Continue` ahead of every answer: the answer reaches the client, nothing fails over, nothing counts against the
// endpoint, and the same keep-alive connection serves the next request. A body that merely contains the text of an
// interim response is passed on untouched.

const answer = (content: string) =>
  JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });

let upstream: net.Server;
let connections = 0;
let server: LbServer;
let client: OpenAI;
const failures: unknown[] = [];

beforeAll(async () => {
  // A raw HTTP/1.1 upstream: `100 Continue` (in its own write, then again split over two writes), then the answer,
  // whose body is written apart from its head and begins with what looks like an interim response.
  upstream = net.createServer((socket) => {
    connections++;
    let buf = '';
    socket.on('data', (d) => {
      buf += d;
      const head = buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
      if (buf.length < head + 4 + length) return;
      buf = '';
      const body = answer('HTTP/1.1 100 Continue\r\n\r\nis text here');
      socket.write('HTTP/1.1 100 Continue\r\n\r\n');
      socket.write('HTTP/1.1 100 Con', () =>
        socket.write('tinue\r\nx-note: again\r\n\r\n', () =>
          socket.write(
            `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`,
            () => socket.write(body),
          ),
        ),
      );
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as net.AddressInfo).port;
  server = createServer({
    router: {
      endpoints: [{ id: 'a', url: `http://127.0.0.1:${port}/v1`, apiKey: 'sk-test-interim-0123456789' }],
    },
    server: { port: 0 },
    logDestination: { write: () => true } as never,
  });
  server.router.on('attempt:failure', (e) => failures.push(e));
  client = new OpenAI({ baseURL: `${await server.listen()}/v1`, apiKey: 'x', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close(100);
  await new Promise((r) => upstream?.close(r));
});

describe('an upstream that sends 100 Continue it was not asked for', () => {
  it('is answered as if it had not: the final answer, its body untouched, on one connection', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(r.choices[0].message.content).toBe('HTTP/1.1 100 Continue\r\n\r\nis text here');
    }
    expect(failures).toEqual([]);
    expect(connections).toBe(1);
  });
});
