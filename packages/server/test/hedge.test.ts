import { createRouter, type Router, type RouterEvents } from '@lb/core';
import { createOpenAI } from '@lb/openai-adapter';
import type { FakeUpstream } from '@lb/testing';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adapter, server, useUpstreams } from './surfaces.js';

// Hedged requests (issue 25, part 3) on both surfaces: lb-server (the `openai` SDK over HTTP) and
// `LoadBalancedOpenAI` in-process, both on `@lb/exchange`'s `Hedger`.

const messages = [{ role: 'user' as const, content: 'hi' }];
const ask = { model: 'gpt-4o-mini', messages };

/** The `q` quantile of `xs`, nearest rank (p99 of 100 calls is the 99th, not the slowest). */
function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.max(0, Math.min(s.length - 1, Math.ceil(q * s.length) - 1))];
}

function hedgeEvents(router: Router): RouterEvents['hedge'][] {
  const out: RouterEvents['hedge'][] = [];
  router.on('hedge', (e) => out.push(e));
  return out;
}

describe.each([server, adapter])('hedged requests through $name', (surface) => {
  const up = useUpstreams();
  let a: FakeUpstream;
  let b: FakeUpstream;
  beforeEach(() => {
    a = up.a();
    b = up.b();
  });
  const config = up.config;

  /** `n` sequential calls; each call's latency, ms, and how many answers a hedge won. */
  async function run(client: OpenAI, n: number): Promise<{ ms: number[]; hedged: number }> {
    const ms: number[] = [];
    let hedged = 0;
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const { data, response } = await client.chat.completions.create(ask).withResponse();
      ms.push(performance.now() - t);
      expect(data.choices[0].message.content).toMatch(/^Hello from [ab]$/);
      if (response.headers.get('x-lb-hedged') === '1') {
        hedged++;
        expect(data.choices[0].message.content).toBe('Hello from b');
      }
    }
    return { ms, hedged };
  }

  it('cuts p99 at least 3x with one endpoint slow 1 in 10, extra upstream requests within the budget', async () => {
    const N = 200;
    // The slow answer's delay is scaled to this machine's pace (the median of plain calls), never absolute.
    let slowMs = 0;
    let seen = 0;
    a.setDefault(() => ({ type: 'ok', delayMs: ++seen % 10 === 5 && slowMs > 0 ? slowMs : 0 }));
    const off = await surface.start(config());
    const warm = await run(off.client, 20);
    const pace = quantile(warm.ms, 0.5);
    slowMs = Math.min(1500, Math.max(300, Math.round(60 * pace)));
    seen = 0;
    // 200 calls: p99 is the 198th, so two calls a loaded machine made late do not decide it.
    const before = await run(off.client, N);

    const on = await surface.start(config(), {
      // 1 in 10 is slow: a 0.2 budget leaves room for a fast answer that a loaded machine makes late.
      hedge: { afterMs: Math.round(slowMs / 8), budget: 0.2 },
    });
    const events = hedgeEvents(on.router);
    slowMs = 0;
    await run(on.client, 20);
    slowMs = Math.min(1500, Math.max(300, Math.round(60 * pace)));
    seen = 0;
    const bBefore = b.count('/chat/completions');
    const e0 = events.length;
    const after = await run(on.client, N);
    // The measured calls' events (a warm-up call the loaded machine made late may have been hedged too).
    const all = events.splice(0, e0).concat(events);
    const extra = b.count('/chat/completions') - bBefore;

    const p99Off = quantile(before.ms, 0.99);
    const p99On = quantile(after.ms, 0.99);
    expect(before.hedged).toBe(0);
    expect(p99Off / p99On).toBeGreaterThanOrEqual(3);
    // Every slow answer was hedged and the hedge won; the extra load stayed within the budget (20 % of the N + 20
    // calls; the slow tenth is what it took, give or take a late fast answer).
    expect(after.hedged).toBeGreaterThanOrEqual(N / 10);
    expect(extra).toBeGreaterThanOrEqual(N / 10);
    expect(extra).toBeLessThanOrEqual(Math.floor(0.2 * (N + 20)));
    const started = events.filter((e) => e.phase === 'started').length;
    // A hedge cancelled the instant it went out may never reach the upstream: started ≥ what arrived.
    expect(started).toBeGreaterThanOrEqual(extra);
    expect(started).toBeLessThanOrEqual(Math.floor(0.2 * (N + 20)));
    expect(events.filter((e) => e.phase === 'won').length).toBe(after.hedged);
    if (on.metrics) {
      const text = await on.metrics();
      const count = (phase: string) => all.filter((e) => e.phase === phase).length;
      expect(text).toMatch(new RegExp(`^lb_hedges_started_total ${count('started')}$`, 'm'));
      expect(text).toMatch(new RegExp(`^lb_hedges_won_total ${count('won')}$`, 'm'));
    }
  }, 120_000);

  it('keeps to the budget: past it, a slow answer is waited for', async () => {
    a.setDefault({ type: 'ok', delayMs: 150 });
    const on = await surface.start(config(), { hedge: { afterMs: 20, budget: 0.25 } });
    const events = hedgeEvents(on.router);
    const bBefore = b.count('/chat/completions');
    await run(on.client, 8);
    const extra = b.count('/chat/completions') - bBefore;
    // 8 calls, each slow: at most 25 % of them may be hedged.
    expect(extra).toBe(2);
    expect(events.filter((e) => e.phase === 'started').length).toBe(2);
    expect(events.filter((e) => e.phase === 'skipped').length).toBe(6);
  }, 60_000);

  it('never hedges a file upload or a chat completion asked to be stored', async () => {
    a.setDefault({ type: 'ok', delayMs: 200 });
    const on = await surface.start(config(), { hedge: { afterMs: 5, budget: 1 } });
    const events = hedgeEvents(on.router);
    const bFiles = b.count('/files');
    const file = await on.client.files.create({
      file: await toFile(Buffer.from('{"a":1}\n'), 'data.jsonl'),
      purpose: 'batch',
    });
    expect(file.object).toBe('file');
    expect(b.count('/files')).toBe(bFiles);
    const bChat = b.count('/chat/completions');
    const stored = await on.client.chat.completions.create({ ...ask, store: true }).withResponse();
    expect(stored.response.headers.get('x-lb-hedged')).toBeNull();
    expect(b.count('/chat/completions')).toBe(bChat);
    expect(events).toHaveLength(0);
    // The same call without `store` is hedged: the setup above could have hedged.
    const plain = await on.client.chat.completions.create(ask).withResponse();
    expect(plain.response.headers.get('x-lb-hedged')).toBe('1');
    expect(b.count('/chat/completions')).toBe(bChat + 1);
  }, 60_000);

  it('hedges a stream before its first byte, and cancels the loser without counting it a failure', async () => {
    a.setDefault({ type: 'stream', chunks: ['slow'], firstByteDelayMs: 300 });
    b.setDefault({ type: 'stream', chunks: ['fa', 'st'] });
    const on = await surface.start(config(), { hedge: { afterMs: 20, budget: 1 } });
    const failures: RouterEvents['attempt:failure'][] = [];
    on.router.on('attempt:failure', (e) => failures.push(e));
    const { data, response } = await on.client.chat.completions
      .create({ ...ask, stream: true })
      .withResponse();
    let text = '';
    for await (const ch of data) text += ch.choices[0]?.delta?.content ?? '';
    expect(text).toBe('fast');
    expect(response.headers.get('x-lb-hedged')).toBe('1');
    expect(on.router.getStats('a')?.failures ?? 0).toBe(0);
    expect(failures.every((f) => f.kind === 'aborted' && !f.countsForBreaker)).toBe(true);
  }, 60_000);

  it('with hedge_after = "p95", waits for the route to learn its latency, then hedges past its p95', async () => {
    let slow = 0;
    a.setDefault(() => ({ type: 'ok', delayMs: slow }));
    const on = await surface.start(config(), { hedge: { after: 'p95', budget: 1 } });
    const events = hedgeEvents(on.router);
    // Too few samples and no fixed delay: no hedge, whatever the wait.
    slow = 0;
    await run(on.client, 19);
    expect(events).toHaveLength(0);
    // Once the route has its samples, an answer slower than all of them is hedged.
    await run(on.client, 11);
    const fast = events.length;
    const pace = Math.max(...(await run(on.client, 5)).ms);
    slow = Math.max(300, Math.round(20 * pace));
    const r = await run(on.client, 1);
    expect(r.hedged).toBe(1);
    expect(events.filter((e) => e.phase === 'started').length).toBeGreaterThan(
      events.slice(0, fast).filter((e) => e.phase === 'started').length,
    );
  }, 60_000);
});

describe('LoadBalancedOpenAI reads LB_HEDGE_AFTER_MS and LB_HEDGE_BUDGET', () => {
  const up = useUpstreams();
  afterEach(() => {
    delete process.env.LB_HEDGE_AFTER_MS;
    delete process.env.LB_HEDGE_BUDGET;
  });

  it('hedges by the environment when no hedge option is given, and not without it', async () => {
    up.a().setDefault({ type: 'ok', delayMs: 300 });
    const plain = createOpenAI(createRouter(up.config()));
    const r0 = await plain.chat.completions.create(ask).withResponse();
    expect(r0.response.headers.get('x-lb-hedged')).toBeNull();
    process.env.LB_HEDGE_AFTER_MS = '20';
    process.env.LB_HEDGE_BUDGET = '1';
    const client = createOpenAI(createRouter(up.config()));
    const r = await client.chat.completions.create(ask).withResponse();
    expect(r.response.headers.get('x-lb-hedged')).toBe('1');
    expect(r.data.choices[0].message.content).toBe('Hello from b');
    process.env.LB_HEDGE_BUDGET = '3';
    expect(() => createOpenAI(createRouter(up.config()))).toThrow(/LB_HEDGE_BUDGET/);
  }, 30_000);
});

describe('lb-server: a reload turns hedging on and off', () => {
  const up = useUpstreams();

  it('follows the reloaded config', async () => {
    up.a().setDefault({ type: 'ok', delayMs: 200 });
    const { client, reload } = await server.start(up.config(), { hedge: { afterMs: 10, budget: 1 } });
    const hedged = async () =>
      (await client.chat.completions.create(ask).withResponse()).response.headers.get('x-lb-hedged');
    expect(await hedged()).toBe('1');
    await reload!(up.config());
    expect(await hedged()).toBeNull();
    await reload!(up.config(), { hedge: { afterMs: 10, budget: 1 } });
    expect(await hedged()).toBe('1');
  }, 30_000);
});
