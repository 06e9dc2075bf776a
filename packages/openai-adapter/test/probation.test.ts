import { createRouter, type Router } from '@lb/core';
import { fakeKey, OVERLOADED_MID_STREAM, startFakeAnthropic, timedText } from '@lb/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createOpenAI, type LoadBalancedOpenAI } from '../src/index.js';
import { type Pool, startPool } from './setup.js';

// Stream probation: after a stream of `a` broke past its first byte, `a`'s streams are read whole before the caller
// sees them, so a repeat break fails over to `b`; a clean one ends the probation.
let pool: Pool;
let router: Router;
const ask = { model: 'gpt-4o', stream: true as const, messages: [{ role: 'user' as const, content: 'hi' }] };

beforeEach(async () => {
  pool = await startPool(2);
  router = createRouter({ endpoints: pool.endpoints(), backoff: { initialMs: 1, maxMs: 1 } });
});
afterEach(() => pool.close());

const client = (streamProbationHoldMs?: number, streamProbationMaxBytes?: number): LoadBalancedOpenAI =>
  createOpenAI(router, {
    streamFirstByteTimeoutMs: 2_000,
    streamIdleTimeoutMs: 2_000,
    streamProbationHoldMs,
    streamProbationMaxBytes,
  });
const onProbation = () => router.snapshot().endpoints.find((e) => e.id === 'a')?.streamProbation;

async function breakOne(c: LoadBalancedOpenAI): Promise<void> {
  pool.ups[0].next({ type: 'stream', chunks: ['one', ' two', ' three'], intervalMs: 30, dropAfter: 2 });
  await expect(timedText(await c.chat.completions.create(ask))).rejects.toThrow(/one|stream|terminated/i);
}

describe('stream probation', () => {
  it('fails a repeat break over, then a clean held stream ends the probation', async () => {
    const c = client();
    await breakOne(c);
    expect(onProbation()).toBe(true);

    pool.ups[0].next({ type: 'stream', chunks: ['one', ' two', ' three'], intervalMs: 30, dropAfter: 2 });
    const { data, response } = await c.chat.completions.create(ask).withResponse();
    expect((await timedText(data)).text).toBe('Hello from b');
    expect(response.headers.get('x-lb-endpoint')).toBe('b');
    expect(response.headers.get('x-lb-attempts')).toBe('2');
    expect(onProbation()).toBe(true);

    pool.ups[0].next({ type: 'stream', chunks: ['p', 'q', 'r', 's'], intervalMs: 120 });
    const held = await timedText(await c.chat.completions.create(ask));
    expect(held.text).toBe('pqrs');
    expect(held.at.at(-1)).toBeLessThan(120);
    expect(onProbation()).toBe(false);

    pool.ups[0].next({ type: 'stream', chunks: ['p', 'q', 'r', 's'], intervalMs: 120 });
    const live = await timedText(await c.chat.completions.create(ask));
    expect(live.text).toBe('pqrs');
    expect(live.at.at(-1)).toBeGreaterThanOrEqual(300);
  });

  it('fails over when a held stream sends an error event', async () => {
    const c = client();
    await breakOne(c);
    pool.ups[0].next({
      type: 'stream',
      chunks: ['one', 'two'],
      dropAfter: 1,
      errorEvent: { error: { message: 'overloaded', type: 'server_error' } },
    });
    const { data, response } = await c.chat.completions.create(ask).withResponse();
    expect((await timedText(data)).text).toBe('Hello from b');
    expect(response.headers.get('x-lb-attempts')).toBe('2');
    expect(router.getStats('a')?.lastError).toMatch(/502|overloaded/);
  });

  it("when a probation ends, the endpoint's other held streams go live at once", async () => {
    const c = client();
    await breakOne(c);
    // Two held streams of a: a short one (ends at ~100 ms) and a long one (pieces 120 ms apart, to ~600 ms).
    let n = 0;
    pool.ups[0].setDefault(() =>
      n++ === 0
        ? { type: 'stream', chunks: ['s', 'h', 'o'], intervalMs: 50 }
        : { type: 'stream', chunks: ['1', '2', '3', '4', '5', '6'], intervalMs: 120 },
    );
    const short = c.chat.completions.create(ask);
    await vi.waitFor(() => expect(n).toBe(1));
    const long = c.chat.completions.create(ask);
    await vi.waitFor(() => expect(n).toBe(2));
    expect((await timedText(await short)).text).toBe('sho');
    expect(onProbation()).toBe(false);
    // The long one went live when the short one ended the probation: its rest arrives as the upstream sends it.
    const l = await timedText(await long);
    expect(l.text).toBe('123456');
    expect(l.at.at(-1)! - l.at[0]!).toBeGreaterThanOrEqual(300);
    // The holds listened only while holding.
    expect(router.listenerCount('endpoint:probation')).toBe(0);
  });

  it('lets a held stream go live once the hold time is up, the pending read included', async () => {
    const c = client(150);
    await breakOne(c);
    pool.ups[0].next({ type: 'stream', chunks: ['1', '2', '3', '4', '5', '6'], intervalMs: 100 });
    const s = await timedText(await c.chat.completions.create(ask));
    expect(s.text).toBe('123456');
    expect(s.at[1]).toBeLessThan(50);
    expect(s.at.at(-1)).toBeGreaterThanOrEqual(250);
    expect(onProbation()).toBe(false);
  });

  it('with holding off (0), a repeat break reaches the caller; a bad value is refused', async () => {
    const c = client(0);
    await breakOne(c);
    await breakOne(c);
    expect(pool.ups[1].count()).toBe(0);
    expect(() => client(-1)).toThrow('streamProbationHoldMs: expected a number of ms >= 0, received -1');
    expect(() => client(undefined, 0)).toThrow(
      'streamProbationMaxBytes: expected a number of bytes > 0, received 0',
    );
  });

  it("bounds what the client's held streams keep together, and gives it back when a hold ends", async () => {
    const PQRS = { type: 'stream' as const, chunks: ['p', 'q', 'r', 's'], intervalMs: 120 };
    // The size of one such stream, read straight from the upstream: the budget fits one, not two.
    pool.ups[0].next({ ...PQRS, intervalMs: 1 });
    const raw = await fetch(`${pool.ups[0].url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${pool.keys[0]}`, 'content-type': 'application/json' },
      body: JSON.stringify(ask),
    });
    const size = (await raw.arrayBuffer()).byteLength;
    const c = client(undefined, Math.floor(size * 1.5));
    // Twice: a held stream, whole at once (a budget not given back would send the second one live).
    for (let i = 0; i < 2; i++) {
      await breakOne(c);
      pool.ups[0].next(PQRS);
      const held = await timedText(await c.chat.completions.create(ask));
      expect(held.text).toBe('pqrs');
      expect(held.at.at(-1)).toBeLessThan(120);
    }
    // A budget smaller than one piece: the stream goes live at its first piece.
    const tiny = client(undefined, 16);
    await breakOne(tiny);
    pool.ups[0].next(PQRS);
    const live = await timedText(await tiny.chat.completions.create(ask));
    expect(live.text).toBe('pqrs');
    expect(live.at.at(-1)).toBeGreaterThanOrEqual(300);
  });
});

describe('stream probation of a translated (Anthropic) stream', () => {
  it('holds it back and fails its error event over; a clean one ends the probation', async () => {
    const claudeKey = fakeKey('claude');
    const claude = await startFakeAnthropic({ acceptKeys: [claudeKey] });
    router = createRouter({
      endpoints: [
        { id: 'claude', url: claude.url, apiKey: claudeKey, provider: 'anthropic', priority: 1 },
        { ...pool.endpoints()[1]!, priority: 2 },
      ],
      backoff: { initialMs: 1, maxMs: 1 },
    });
    const c = client();
    const probation = () => router.snapshot().endpoints.find((e) => e.id === 'claude')?.streamProbation;
    try {
      claude.next(OVERLOADED_MID_STREAM);
      await expect(timedText(await c.chat.completions.create(ask))).rejects.toThrow(/overloaded/);
      expect(probation()).toBe(true);
      claude.next(OVERLOADED_MID_STREAM);
      const { data, response } = await c.chat.completions.create(ask).withResponse();
      expect((await timedText(data)).text).toBe('Hello from b');
      expect(response.headers.get('x-lb-attempts')).toBe('2');
      claude.next({ type: 'ok', chunks: ['p', 'q', 'r'], intervalMs: 100 });
      const held = await timedText(await c.chat.completions.create(ask));
      expect(held.text).toBe('pqr');
      expect(held.at.at(-1)).toBeLessThan(100);
      expect(probation()).toBe(false);
    } finally {
      await claude.close();
    }
  });
});
