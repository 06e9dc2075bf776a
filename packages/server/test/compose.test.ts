import type { RouterConfig } from '@lb/core';
import { type FakeUpstream, fakeKey, type RecordedRequest, startFakeUpstream } from '@lb/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapter, server } from './surfaces.js';

// The request-lifecycle features composed, on both surfaces: each was built alone in `@lb/exchange` (fallbacks,
// hedging, stream continuation, cost); here they meet in one request.

const PRICES = { 'gpt-4o': { input: 5, output: 20 }, 'gpt-4o-mini': { input: 1, output: 2 } };
/** The fake upstream's usage (9 in, 12 out) at gpt-4o-mini's price. */
const MINI_USD = (9 * 1 + 12 * 2) / 1e6;

const contextError = {
  type: 'status' as const,
  status: 400,
  body: {
    error: {
      message: "This model's maximum context length is 128000 tokens.",
      type: 'invalid_request_error',
      param: 'messages',
      code: 'context_length_exceeded',
    },
  },
};

const keys = { big: fakeKey('big'), mini: fakeKey('mini') };
let big: FakeUpstream;
let mini: FakeUpstream;
beforeAll(async () => {
  [big, mini] = await Promise.all([
    startFakeUpstream({ name: 'big', acceptKeys: [keys.big] }),
    startFakeUpstream({ name: 'mini', acceptKeys: [keys.mini] }),
  ]);
});
afterAll(async () => {
  await Promise.all([big?.close(), mini?.close()]);
});

/** `big` serves gpt-4o, `mini` gpt-4o-mini (each model has one endpoint: a fallback is the only way across). */
const config = (): RouterConfig => ({
  endpoints: [
    { id: 'big', url: big.url, apiKey: keys.big, models: ['gpt-4o'] },
    { id: 'mini', url: mini.url, apiKey: keys.mini, models: ['gpt-4o-mini'] },
  ],
  outlierEjection: false,
});
const fallbacks = { contextWindow: { 'gpt-4o': ['gpt-4o-mini'] } };
const messages = [{ role: 'user' as const, content: 'hi' }];

describe.each([server, adapter])('features composed through $name', (surface) => {
  it('a fallback is priced at the model that answered, and says so', async () => {
    big.setDefault(contextError);
    mini.setDefault({ type: 'ok' });
    const on = await surface.start(config(), { fallbacks, prices: PRICES });
    const { data, response } = await on.client.chat.completions
      .create({ model: 'gpt-4o', messages })
      .withResponse();
    expect(response.headers.get('x-lb-fallback')).toBe('gpt-4o-mini');
    expect(data.model).toBe('gpt-4o-mini');
    expect(Number(response.headers.get('x-lb-cost'))).toBeCloseTo(MINI_USD, 12);
  });

  it('a fallback stream is priced, and the usage lb asked for stays out of the client stream', async () => {
    big.setDefault(contextError);
    mini.setDefault({
      type: 'stream',
      chunks: ['Hel', 'lo'],
      usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 },
    });
    const on = await surface.start(config(), { fallbacks, prices: PRICES });
    const costs: (number | undefined)[] = [];
    on.router.on('attempt:usage', (e) => costs.push(e.costUsd));
    const seen = mini.requests.length;
    const stream = await on.client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    let text = '';
    const chunks: any[] = [];
    for await (const ch of stream) {
      chunks.push(ch);
      text += ch.choices[0]?.delta?.content ?? '';
    }
    expect(text).toBe('Hello');
    // lb asked the upstream for usage (to price the stream)…
    const sent: RecordedRequest = mini.requests[seen];
    expect(sent.json.stream_options).toEqual({ include_usage: true });
    // …and the client, which did not, sees no usage chunk.
    expect(chunks.every((c) => c.usage == null && c.choices.length === 1)).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(costs.at(-1)).toBeCloseTo(MINI_USD, 12);
  });

  it('a stream cut after content on the fallback model is continued on that model, whole, without usage', async () => {
    big.setDefault(contextError);
    const pieces = ['The ', 'quick ', 'brown ', 'fox.'];
    // mini's first stream sends two pieces and breaks once the client has them (no race with the first-content gate);
    // the continuation (the partial answer as an assistant message) gets the rest.
    let streams = 0;
    let cut = () => {};
    mini.setDefault((req: RecordedRequest) => {
      if (++streams > 1)
        return {
          type: 'stream',
          chunks: req.json.messages.at(-2)?.content === 'The quick ' ? pieces.slice(2) : ['wrong'],
        };
      return {
        type: 'custom',
        handle: (_req, res) => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          const ev = (delta: object) =>
            `data: ${JSON.stringify({ id: 'c-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
          res.write(ev({ role: 'assistant', content: '' }));
          for (const p of pieces.slice(0, 2)) res.write(ev({ content: p }));
          cut = () => res.socket?.destroy();
        },
      };
    });
    const on = await surface.start(
      {
        ...config(),
        endpoints: [
          ...config().endpoints,
          { id: 'mini2', url: mini.url, apiKey: keys.mini, models: ['gpt-4o-mini'] },
        ],
      },
      { fallbacks, prices: PRICES, streamContinue: true },
    );
    const stream = await on.client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    let text = '';
    let usageChunks = 0;
    for await (const ch of stream as AsyncIterable<any>) {
      if (ch.usage != null || ch.choices.length === 0) usageChunks++;
      text += ch.choices[0]?.delta?.content ?? '';
      if (text === 'The quick ') cut();
    }
    expect(text).toBe(pieces.join(''));
    expect(usageChunks).toBe(0);
    expect(streams).toBe(2);
  });
});
