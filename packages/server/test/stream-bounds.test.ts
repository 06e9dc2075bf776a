import { createRouter, type RouterConfig } from '@lb/core';
import { createOpenAI } from '@lb/openai-adapter';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// Bounds on a stream that keeps a connection: the longest one stream may run (`maxStreamDurationMs`, both surfaces,
// in the engine), and a shutdown that cannot wait for a stream any longer (lb-server): each ends the client's stream
// with an SSE error event, never a cut connection.

let up: FakeUpstream;
const key = fakeKey('bounds');
const closers: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  up = await startFakeUpstream({ name: 'slow', acceptKeys: [key] });
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});
afterAll(async () => {
  await up.close();
});

const router = (): RouterConfig => ({ endpoints: [{ id: 'a', url: up.url, apiKey: key }] });
// A stream that would run for minutes: 6,000 pieces 20 ms apart.
const endless = {
  type: 'stream' as const,
  chunks: Array.from({ length: 6000 }, (_, i) => `${i} `),
  intervalMs: 20,
};
const ask = {
  model: 'gpt-4o-mini',
  messages: [{ role: 'user' as const, content: 'hi' }],
  stream: true as const,
};

/** Reads a stream to its end; the text it gave and the error that ended it. */
async function drain(stream: AsyncIterable<{ choices: { delta?: { content?: string | null } }[] }>) {
  let text = '';
  try {
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  } catch (e) {
    return { text, error: e as Error };
  }
  return { text, error: undefined };
}

async function serve(
  server: Parameters<typeof createServer>[0]['server'],
): Promise<{ s: LbServer; client: OpenAI }> {
  const s = createServer({
    router: router(),
    logDestination: { write: () => true } as never,
    server: { port: 0, ...server },
  });
  const base = await s.listen();
  closers.push(() => s.close(100));
  return { s, client: new OpenAI({ baseURL: `${base}/v1`, apiKey: 'client-key', maxRetries: 0 }) };
}

describe.each([
  ['lb-server', async (maxStreamDurationMs: number) => (await serve({ maxStreamDurationMs })).client],
  [
    'LoadBalancedOpenAI',
    async (maxStreamDurationMs: number) => createOpenAI(createRouter(router()), { maxStreamDurationMs }),
  ],
] as const)('maxStreamDurationMs on %s', (_name, start) => {
  it('ends a stream that runs past it with an error, aborts the upstream, and keeps what came before', async () => {
    up.next(endless);
    const aborted = up.aborted;
    const client = await start(300);
    const { text, error } = await drain(await client.chat.completions.create(ask));
    expect(error?.message).toMatch(/ran past 300 ms/);
    // What arrived is a whole prefix of the upstream's pieces, far short of all of them.
    expect(text).toMatch(/^0 1 (\d+ )*$/);
    expect(text.split(' ').length - 1).toBeLessThan(6000);
    await vi.waitFor(() => expect(up.aborted).toBe(aborted + 1), { timeout: 30_000 });
  });

  it('0 turns the bound off', async () => {
    up.next({ type: 'stream', chunks: ['a', 'b', 'c'], intervalMs: 5 });
    const client = await start(0);
    expect(await drain(await client.chat.completions.create(ask))).toEqual({ text: 'abc', error: undefined });
  });
});

describe('a shutdown that cannot wait for a stream', () => {
  it('ends it with an SSE error event the SDK raises, and aborts the upstream', async () => {
    up.next(endless);
    const aborted = up.aborted;
    const { s, client } = await serve({});
    const stream = await client.chat.completions.create(ask);
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next(); // the stream is under way
    expect(first.done).toBe(false);
    const closing = s.close(50);
    let error: Error | undefined;
    try {
      for (let r = await it.next(); !r.done; r = await it.next());
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).toMatch(/shutting down/);
    expect(await closing).toMatchObject({ drained: false, cut: 1 });
    await vi.waitFor(() => expect(up.aborted).toBe(aborted + 1), { timeout: 30_000 });
  });
});
