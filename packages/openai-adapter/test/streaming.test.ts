import { createRouter, type Router } from '@lb/core';
import { collectEvents } from '@lb/testing';
import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createOpenAI,
  isStreamInterruptedError,
  isStreamTimeoutError,
  type LoadBalancedOpenAI,
} from '../src/index.js';
import { type Pool, startPool } from './setup.js';

let pool: Pool;
let router: Router;
let client: LoadBalancedOpenAI;
const messages = [{ role: 'user' as const, content: 'hi' }];

beforeEach(async () => {
  pool = await startPool(2);
  router = createRouter({ endpoints: pool.endpoints(), backoff: { initialMs: 1, maxMs: 1 } });
  client = createOpenAI(router, { streamFirstByteTimeoutMs: 300, streamIdleTimeoutMs: 300 });
});
afterEach(() => pool.close());

async function collect(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  let text = '';
  let who: string | undefined;
  for await (const c of stream) {
    text += c.choices[0]?.delta?.content ?? '';
    who ??= c.system_fingerprint ?? undefined;
  }
  return { text, who };
}

describe('streaming', () => {
  it('streams through and ends the router hold (attempt:end ok)', async () => {
    const { events } = collectEvents(router, ['attempt:end']);
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    expect(await collect(stream)).toEqual({ text: 'Hello from a', who: 'a' });
    expect(events.map((e) => [e.payload.endpointId, e.payload.ok])).toEqual([['a', true]]);
    expect(router.getStats('a')?.inFlight).toBe(0);
  });

  it.each([
    ['a 500 before the stream', { type: 'status', status: 500 } as const, 'server'],
    ['a reset before headers', { type: 'reset' } as const, 'network'],
    [
      'a reset after headers, before the first byte',
      { type: 'stream', dropAfter: 0, chunks: ['x'] } as const,
      'network',
    ],
    [
      'headers but no first byte in time',
      {
        type: 'custom',
        handle: (_req: unknown, res: import('node:http').ServerResponse) => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.flushHeaders();
        },
      } as const,
      'timeout',
    ],
    [
      'an error event as the first event',
      {
        type: 'stream',
        errorEvent: { error: { message: 'overloaded', type: 'server_error', code: null } },
      } as const,
      'server',
    ],
  ])('fails over on %s', async (_name, behaviour, kind) => {
    const { events } = collectEvents(router, ['attempt:failure']);
    pool.ups[0].next(behaviour as never);
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    expect(await collect(stream)).toEqual({ text: 'Hello from b', who: 'b' });
    expect(pool.ups[1].count('/chat/completions')).toBe(1);
    expect(events.map((e) => [e.payload.endpointId, e.payload.kind])).toEqual([['a', kind]]);
  });

  it('a rate-limit error event first cools the endpoint down and fails over', async () => {
    pool.ups[0].next({
      type: 'stream',
      errorEvent: { error: { message: 'slow down', type: 'rate_limit_error', code: 'rate_limit_exceeded' } },
    });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    expect((await collect(stream)).who).toBe('b');
    expect(router.getHealth('a')?.status).toBe('cooling');
  });

  it('a break mid-stream rejects the iteration promptly with StreamInterruptedError', async () => {
    const { events } = collectEvents(router, ['attempt:end']);
    pool.ups[0].next({ type: 'stream', chunks: ['one', 'two', 'three'], dropAfter: 2, intervalMs: 10 });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    let text = '';
    const err = await (async () => {
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    })().catch((e) => e);
    expect(text.startsWith('one')).toBe(true);
    expect(isStreamInterruptedError(err)).toBe(true);
    expect(err.endpointId).toBe('a');
    expect(err.toOpenAIError().error.code).toBe('stream_interrupted');
    expect(pool.ups[1].count()).toBe(0); // no failover after the first byte
    await vi.waitFor(() => expect(events).toHaveLength(1));
    expect(events[0].payload).toMatchObject({ endpointId: 'a', ok: false, kind: 'network' });
    expect(router.getStats('a')?.inFlight).toBe(0);
  });

  it('an upstream that goes silent mid-stream errors with StreamTimeoutError and is cancelled', async () => {
    const { events } = collectEvents(router, ['attempt:end']);
    pool.ups[0].next({ type: 'stream', chunks: ['one', 'two'], intervalMs: 10_000 });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const err = await collect(stream).catch((e) => e);
    expect(isStreamTimeoutError(err)).toBe(true);
    expect(err.phase).toBe('idle');
    expect(events[0].payload).toMatchObject({ endpointId: 'a', ok: false, kind: 'timeout' });
    await vi.waitFor(() => expect(pool.ups[0].aborted).toBe(1));
  });

  it('an error event mid-stream surfaces as the SDK APIError, and counts as a broken stream', async () => {
    const { events } = collectEvents(router, ['attempt:end']);
    pool.ups[0].next({
      type: 'stream',
      chunks: ['one', 'two'],
      dropAfter: 1,
      errorEvent: { error: { message: 'boom', type: 'server_error' } },
    });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    const err = await collect(stream).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.message).toContain('boom');
    await vi.waitFor(() => expect(events).toHaveLength(1));
    expect(events[0].payload).toMatchObject({ endpointId: 'a', ok: false });
    expect(router.snapshot().endpoints[0]!.streamProbation).toBe(true);
  });

  it('aborting mid-stream cancels the upstream request', async () => {
    pool.ups[0].next({ type: 'stream', chunks: ['a', 'b', 'c', 'd'], intervalMs: 150 });
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o', messages, stream: true },
      { signal: ac.signal },
    );
    const seen: string[] = [];
    const done = (async () => {
      for await (const c of stream) {
        seen.push(c.choices[0]?.delta?.content ?? '');
        if (seen.length === 2) ac.abort();
      }
    })().catch((e) => e);
    const result = await done;
    // The SDK ends an aborted stream quietly or with its abort error; either way it ends and upstream is cancelled.
    expect(
      result === undefined || result instanceof OpenAI.APIUserAbortError || result?.name === 'AbortError',
    ).toBe(true);
    expect(seen.length).toBeLessThan(5);
    await vi.waitFor(() => expect(pool.ups[0].aborted).toBe(1));
    await vi.waitFor(() => expect(router.getStats('a')?.inFlight).toBe(0));
  });

  it('breaking out of the loop cancels the upstream request', async () => {
    pool.ups[0].next({ type: 'stream', chunks: ['a', 'b', 'c', 'd'], intervalMs: 150 });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    for await (const _ of stream) break;
    await vi.waitFor(() => expect(pool.ups[0].aborted).toBe(1));
  });

  it('a withOptions copy streams with failover too', async () => {
    pool.ups[0].next({ type: 'status', status: 502 });
    const r = await client
      .withOptions({})
      .chat.completions.create({ model: 'gpt-4o', messages, stream: true });
    expect((await collect(r)).who).toBe('b');
  });
});
