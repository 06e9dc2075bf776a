import type { RouterConfig } from '@lb/core';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adapter, type Surface, server } from './surfaces.js';

// Cost per request on both surfaces (the engine's `askForUsage` / `dropAskedUsage`, `x-lb-cost`, `costUsd` on the
// bus): lb-server driven by the official SDK over HTTP, and `@lb/openai-adapter` in process with `cost` set.

const upKey = fakeKey('spend-surfaces');
const PRICES = { 'gpt-4o-mini': { input: 1, output: 2 }, 'text-embedding-3-small': { input: 1 } };
const CHAT_USD = (9 + 12 * 2) / 1e6;

/** Starts `surface` with the prices, collecting `costUsd` of every `attempt:usage` on its bus. */
async function start(surface: Surface, config: RouterConfig) {
  const { client, router } = await surface.start(config, { prices: PRICES });
  const costs: (number | undefined)[] = [];
  router.on('attempt:usage', (e) => costs.push(e.costUsd));
  return { client, costs };
}

let up: FakeUpstream;
beforeAll(async () => {
  up = await startFakeUpstream({ name: 'up', acceptKeys: [upKey] });
});
afterAll(async () => {
  await up?.close();
});

const config = (): RouterConfig => ({ endpoints: [{ id: 'up', url: up.url, apiKey: upKey }] });
const messages = [{ role: 'user' as const, content: 'hi' }];

describe.each([server, adapter])('cost on $name', (surface) => {
  it('chat: x-lb-cost and costUsd on the bus', async () => {
    const { client, costs } = await start(surface, config());
    const { response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages })
      .withResponse();
    expect(Number(response.headers.get('x-lb-cost'))).toBeCloseTo(CHAT_USD, 12);
    await new Promise((r) => setImmediate(r));
    expect(costs).toHaveLength(1);
    expect(costs[0]).toBeCloseTo(CHAT_USD, 12);
  });

  it('embeddings', async () => {
    const { client } = await start(surface, config());
    const { response } = await client.embeddings
      .create({ model: 'text-embedding-3-small', input: 'x' })
      .withResponse();
    expect(Number(response.headers.get('x-lb-cost'))).toBeCloseTo(4 / 1e6, 12);
  });

  it('an unpriced model: no header, no cost on the bus (unknown, never 0)', async () => {
    const { client, costs } = await start(surface, config());
    const { response } = await client.chat.completions
      .create({ model: 'unpriced-thing', messages })
      .withResponse();
    expect(response.headers.get('x-lb-cost')).toBeNull();
    await new Promise((r) => setImmediate(r));
    expect(costs).toEqual([undefined]);
  });

  it('a stream without include_usage: usage asked for, priced, and not in the caller’s stream', async () => {
    const { client, costs } = await start(surface, config());
    const n = up.requests.length;
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    const chunks: unknown[] = [];
    for await (const c of stream) chunks.push(c);
    expect(up.requests[n].json.stream_options).toEqual({ include_usage: true });
    expect(chunks.some((c) => (c as { usage?: unknown }).usage !== undefined)).toBe(false);
    expect(chunks.every((c) => (c as { choices: unknown[] }).choices.length === 1)).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(costs[0]).toBeGreaterThan(0);
  });

  it('a stream with include_usage: the caller gets its usage chunk', async () => {
    const { client, costs } = await start(surface, config());
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: unknown;
    for await (const c of stream) if (c.usage) usage = c.usage;
    expect(usage).toMatchObject({ prompt_tokens: 9 });
    await new Promise((r) => setImmediate(r));
    expect(costs[0]).toBeGreaterThan(0);
  });
});
