import type { ServerResponse } from 'node:http';
import { createRouter, type EndpointConfig, type Router, type RouterConfig, type Usage } from '@lb/core';
import { createOpenAI } from '@lb/openai-adapter';
import { type FakeUpstream, fakeKey, startFakeUpstream, streamedText } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer } from '../src/index.js';

// One behaviour, two surfaces: every scenario runs against lb-server (driven by the official `openai` SDK over HTTP)
// and against `LoadBalancedOpenAI` in-process, both on the exchange engine (`@lb/exchange`). A scenario that passes
// on one surface and not the other fails here.

/** The engine's stream settings a scenario may set (the same names on both surfaces). */
interface StreamSettings {
  streamFirstByteTimeoutMs?: number;
  streamIdleTimeoutMs?: number;
  streamProbationHoldMs?: number;
  maxEventBytes?: number;
}

interface Started {
  client: OpenAI;
  router: Router;
}

interface Surface {
  readonly name: string;
  start(router: RouterConfig, stream?: StreamSettings): Promise<Started>;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

const server: Surface = {
  name: 'lb-server',
  async start(router, stream = {}) {
    const s = createServer({
      router,
      breaker: { enabled: false },
      logDestination: { write: () => true } as never,
      server: { port: 0, ...stream },
    });
    const base = await s.listen();
    closers.push(async () => {
      await s.close(100);
    });
    return {
      client: new OpenAI({ baseURL: `${base}/v1`, apiKey: 'client-key', maxRetries: 0 }),
      router: s.router,
    };
  },
};

const adapter: Surface = {
  name: 'LoadBalancedOpenAI',
  async start(config, stream = {}) {
    const router = createRouter(config);
    return { client: createOpenAI(router, stream), router };
  },
};

const messages = [{ role: 'user' as const, content: 'hi' }];
const ask = { model: 'gpt-4o-mini', messages };
const askStream = { ...ask, stream: true as const };

/** A chat completion chunk's SSE event. */
const chunk = (delta: object, extra: object = {}) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;

/** An upstream answer written by hand: 200, event stream, `write` does the rest. */
function sse(write: (res: ServerResponse) => void) {
  return {
    type: 'custom' as const,
    handle: (_req: unknown, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      write(res);
    },
  };
}

/** What an iteration of a stream read before it ended, and how it ended. */
async function drain(stream: AsyncIterable<{ choices: { delta?: { content?: string | null } }[] }>) {
  let text = '';
  try {
    for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
    return { text, error: undefined };
  } catch (error) {
    return { text, error: error as Error };
  }
}

describe.each([server, adapter])('the exchange engine through $name', (surface) => {
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
    a.setAcceptKeys([keys.a]);
    a.requests.length = 0;
    b.requests.length = 0;
  });

  /** a (priority 1) then b, priority strategy; `extra` over each endpoint, `router` over the config. */
  const config = (extra: Partial<EndpointConfig> = {}, router: Partial<RouterConfig> = {}): RouterConfig => ({
    endpoints: [
      { id: 'a', url: a.url, apiKey: keys.a, priority: 1, ...extra },
      { id: 'b', url: b.url, apiKey: keys.b, priority: 2, ...extra },
    ],
    strategy: 'priority',
    ...router,
  });

  it('a role-only preamble then an error event does not commit the stream: it fails over', async () => {
    const { client } = await surface.start(config());
    a.next(
      sse((res) => {
        res.write(chunk({ role: 'assistant', content: '' }));
        res.write(': keep-alive\n\n');
        res.end(
          `data: ${JSON.stringify({ error: { message: 'The server is overloaded', type: 'server_error' } })}\n\n`,
        );
      }),
    );
    const r = await client.chat.completions.create(askStream).withResponse();
    expect(await streamedText(r.data)).toBe('Hello from b');
    expect(r.response.headers.get('x-lb-endpoint')).toBe('b');
    expect(r.response.headers.get('x-lb-attempts')).toBe('2');
  });

  it('an error before the first byte fails over, streamed or not', async () => {
    const { client } = await surface.start(config());
    a.next({ type: 'status', status: 503 }, { type: 'reset' });
    const plain = await client.chat.completions.create(ask);
    expect(plain.choices[0]?.message.content).toBe('Hello from b');
    expect(await streamedText(await client.chat.completions.create(askStream))).toBe('Hello from b');
  });

  it('a stream cut after its first byte ends with an error at the client, never a hang', async () => {
    const { client, router } = await surface.start(config());
    a.next({ type: 'stream', chunks: ['one', ' two', ' three'], intervalMs: 20, dropAfter: 2 });
    const r = await drain(await client.chat.completions.create(askStream));
    // What was sent before the cut (the last piece may be lost with the connection), then an error.
    expect(r.text).toMatch(/^one/);
    expect(r.error).toBeInstanceOf(Error);
    await vi.waitFor(() => expect(router.getStats('a')!.inFlight).toBe(0));
  });

  it('a stream with no content within the first-byte timeout fails over; one that stalls mid-way errors', async () => {
    const { client } = await surface.start(config(), {
      streamFirstByteTimeoutMs: 300,
      streamIdleTimeoutMs: 300,
    });
    a.next({ type: 'stream', firstEventDelayMs: 30_000 });
    expect(await streamedText(await client.chat.completions.create(askStream))).toBe('Hello from b');
    a.next({ type: 'stream', chunks: ['x', 'y'], intervalMs: 30_000 });
    const r = await drain(await client.chat.completions.create(askStream));
    expect(r.text).toBe('x');
    expect(r.error?.message).toMatch(/stall|nothing for|no stream data|timeout/i);
  });

  it('after a break, the endpoint is on probation: its next stream is held back and a repeat break fails over', async () => {
    const { client, router } = await surface.start(config());
    a.next({ type: 'stream', chunks: ['one', ' two', ' three'], intervalMs: 20, dropAfter: 2 });
    expect((await drain(await client.chat.completions.create(askStream))).error).toBeInstanceOf(Error);
    expect(router.snapshot().endpoints.find((e) => e.id === 'a')?.streamProbation).toBe(true);
    a.next({ type: 'stream', chunks: ['one', ' two', ' three'], intervalMs: 20, dropAfter: 2 });
    expect(await streamedText(await client.chat.completions.create(askStream))).toBe('Hello from b');
    // A clean stream of a ends the probation.
    a.next({ type: 'stream', chunks: ['p', 'q'] });
    expect(await streamedText(await client.chat.completions.create(askStream))).toBe('pq');
    expect(router.snapshot().endpoints.find((e) => e.id === 'a')?.streamProbation).toBe(false);
  });

  it("reads usage from a stream's tail and from a JSON answer, as the provider reported it", async () => {
    const { client, router } = await surface.start(config());
    const seen: Usage[] = [];
    router.on('attempt:usage', (e) => seen.push(e.usage));
    const usage = { prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 };
    a.next({ type: 'stream', chunks: ['u', 'v'], usage }, { type: 'ok', usage });
    await streamedText(
      await client.chat.completions.create({ ...askStream, stream_options: { include_usage: true } }),
    );
    await client.chat.completions.create(ask);
    await vi.waitFor(() => expect(seen).toHaveLength(2));
    expect(seen).toEqual([usage, usage]);
  });

  it("the caller's abort cancels the upstream request and ends the router's hold", async () => {
    const { client, router } = await surface.start(config());
    a.next({ type: 'stream', chunks: ['1', '2', '3', '4', '5'], intervalMs: 200 });
    const ac = new AbortController();
    const stream = await client.chat.completions.create(askStream, { signal: ac.signal });
    const before = a.aborted;
    let text = '';
    // The SDK ends an aborted iteration quietly or with its abort error, depending on where the abort lands.
    await (async () => {
      for await (const ch of stream) {
        text += ch.choices[0]?.delta?.content ?? '';
        if (text === '1') ac.abort();
      }
    })().catch(() => {});
    expect(text).toBe('1');
    await vi.waitFor(() => expect(a.aborted).toBe(before + 1));
    await vi.waitFor(() => expect(router.getStats('a')!.inFlight).toBe(0));
    // The caller's doing, not the endpoint's: no probation.
    expect(router.snapshot().endpoints.find((e) => e.id === 'a')?.streamProbation).toBe(false);
  });

  it("honours Retry-After: a 429 fails over and cools the endpoint for the upstream's time", async () => {
    const { client, router } = await surface.start(config());
    a.next({ type: 'status', status: 429, headers: { 'retry-after': '30' } });
    const t0 = Date.now();
    expect((await client.chat.completions.create(ask)).choices[0]?.message.content).toBe('Hello from b');
    const snap = router.snapshot().endpoints.find((e) => e.id === 'a')!;
    expect(snap.status).toBe('cooling');
    expect(snap.until! - t0).toBeGreaterThan(20_000);
    // While a cools, requests go to b without trying a.
    const n = a.requests.length;
    await client.chat.completions.create(ask);
    expect(a.requests.length).toBe(n);
  });

  it('a rejected key (401) is set aside: the request fails over, the endpoint is out until re-enabled', async () => {
    const { client, router } = await surface.start(config());
    a.setAcceptKeys(['some-other-key']);
    expect((await client.chat.completions.create(ask)).choices[0]?.message.content).toBe('Hello from b');
    const snap = router.snapshot().endpoints.find((e) => e.id === 'a')!;
    expect(snap.status).toBe('unhealthy');
    expect(snap.reason).toMatch(/key|401/i);
    // The key never shows in what the router says.
    expect(JSON.stringify(router.snapshot())).not.toContain(keys.a);
  });

  it("all endpoints down: the router's verdict, OpenAI-shaped, naming the attempts", async () => {
    const { client } = await surface.start(config({}, { maxRetries: 1 }));
    a.setDefault({ type: 'status', status: 503 });
    b.setDefault({ type: 'status', status: 503 });
    const err = await client.chat.completions.create(ask).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    // Every endpoint answered an error: a bad gateway, never the last upstream body (which may quote a key).
    expect(err.status).toBe(502);
    expect(err.error).toMatchObject({ code: 'upstream_error', type: 'server_error' });
    expect(err.headers.get('x-lb-attempts')).toBe('2');
  });

  it('all endpoints rate limited: a 429 with the Retry-After the router computed, then nothing is tried', async () => {
    const { client } = await surface.start(config({}, { maxRetries: 1 }));
    a.setDefault({ type: 'status', status: 429, headers: { 'retry-after': '20' } });
    b.setDefault({ type: 'status', status: 429, headers: { 'retry-after': '20' } });
    const err = await client.chat.completions.create(ask).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.error).toMatchObject({ code: 'rate_limit_exceeded' });
    expect(err.headers.get('x-lb-attempts')).toBe('2');
    const seconds = Number(err.headers.get('retry-after'));
    expect(seconds).toBeGreaterThan(10);
    expect(seconds).toBeLessThanOrEqual(20);
    expect(Number(err.headers.get('retry-after-ms'))).toBeGreaterThan(10_000);
    const n = a.requests.length + b.requests.length;
    const again = await client.chat.completions.create(ask).catch((e) => e);
    expect(again).toBeInstanceOf(OpenAI.RateLimitError);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(10);
    expect(a.requests.length + b.requests.length).toBe(n);
  });

  it("the deadline bounds an attempt: a hanging upstream ends at the request's deadline, not the endpoint's timeout", async () => {
    // The endpoint's own timeout (60 s) is past the test's timeout: only the deadline can end this request in time.
    const { client } = await surface.start(config({ timeoutMs: 60_000 }, { deadlineMs: 400, maxRetries: 0 }));
    a.next({ type: 'hang' });
    const err = await client.chat.completions.create(ask).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.status).toBe(504);
    expect(JSON.stringify(err.error ?? err.message)).toMatch(/deadline/i);
    a.next({ type: 'stream', firstEventDelayMs: 60_000 });
    const s = await client.chat.completions.create(askStream).catch((e) => e);
    expect(s.status).toBe(504);
  });

  it('an endless event ends the stream with an error (before its content: fails over)', async () => {
    const { client } = await surface.start(config(), { maxEventBytes: 64 * 1024 });
    const line = (res: ServerResponse, n: number) => {
      // 256 KiB of one line without its blank line, 4 KiB a write.
      const piece = 'x'.repeat(4096);
      for (let i = 0; i < n; i++) res.write(piece);
    };
    a.next(
      sse((res) => {
        res.write(chunk({ content: 'Hel' }));
        res.write('data: {"choices":[{"delta":{"content":"');
        line(res, 64);
      }),
    );
    const r = await drain(await client.chat.completions.create(askStream));
    expect(r.text).toBe('Hel');
    expect(r.error?.message).toMatch(/exceeded 65536 bytes/);
    // Before the first content, the same flood is a failed attempt: b answers.
    a.next(
      sse((res) => {
        res.write('data: {"choices":[{"delta":{"content":"');
        line(res, 64);
      }),
    );
    expect(await streamedText(await client.chat.completions.create(askStream))).toBe('Hello from b');
  });
});
