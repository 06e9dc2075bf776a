import { createRouter } from '@lb/core';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachBreaker, attachHealthChecks, type BreakerStateChange } from '../src/index.js';

describe('breaker + health checks on three local upstreams', () => {
  let ups: FakeUpstream[];
  beforeAll(async () => {
    ups = await Promise.all(['one', 'two', 'three'].map((name) => startFakeUpstream({ name })));
  });
  afterAll(async () => {
    await Promise.all(ups.map((u) => u.close()));
  });

  it('every request succeeds through injected 500s and 429s; the failing upstream is cut off and comes back', async () => {
    const [one, two, three] = ups;
    one.setDefault({ type: 'status', status: 500, body: { error: { message: 'boom' } } });
    for (let i = 0; i < 6; i++)
      two.next(
        {
          type: 'status',
          status: 429,
          headers: { 'retry-after-ms': '20' },
          body: { error: { message: 'slow down' } },
        },
        { type: 'ok' },
      );
    const router = createRouter({
      endpoints: ups.map((u, i) => ({ id: u.name, url: u.url, apiKey: fakeKey(u.name), priority: i })),
      strategy: 'round-robin',
      maxRetries: 3,
    });
    const breaker = attachBreaker(router, { threshold: 3, halfOpenAfterMs: 60_000, env: {} });
    const health = attachHealthChecks(router, { breaker, env: {} });
    const changes: BreakerStateChange[] = [];
    breaker.on('state', (c) => changes.push(c));

    const chat = async () => {
      const res = await router.execute(
        { model: 'gpt-4o-mini' },
        ({ endpoint, upstreamModel, signal }) =>
          fetch(`${endpoint.url}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${endpoint.apiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: upstreamModel, messages: [{ role: 'user', content: 'hi' }] }),
            signal,
          }),
        { discard: (r) => r.body?.cancel() },
      );
      const body = await res.json();
      return { status: res.status, content: body.choices?.[0]?.message?.content as string | undefined };
    };

    const results: { status: number; content: string | undefined }[] = [];
    for (let round = 0; round < 6; round++)
      results.push(...(await Promise.all([chat(), chat(), chat(), chat()])));
    expect(results).toHaveLength(24);
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(typeof r.content).toBe('string');
    }
    expect(breaker.state('one')).toBe('open');
    expect(changes[0]).toMatchObject({ endpointId: 'one', to: 'open' });
    expect(changes[0].reason).toContain('HTTP 500');
    // Cut off after its threshold (plus what was already in flight when it opened).
    const hitsWhileBroken = one.count('/chat/completions');
    expect(hitsWhileBroken).toBeLessThan(8);
    expect(two.count('/chat/completions')).toBeGreaterThan(0);
    expect(three.count('/chat/completions')).toBeGreaterThan(0);
    expect(breaker.state('two')).toBe('closed'); // 429s never trip it
    expect(router.snapshot().endpoints[0].guards.breaker).toMatchObject({ state: 'open' });

    // The upstream heals; a probe (not a user) finds out and closes the circuit.
    one.setDefault({ type: 'ok' });
    const [probe] = await health.checkNow('one');
    expect(probe).toMatchObject({ ok: true, status: 200 });
    await new Promise((r) => setImmediate(r));
    expect(breaker.state('one')).toBe('closed');
    expect(changes.at(-1)).toMatchObject({ endpointId: 'one', to: 'closed', reason: 'health probe passed' });
    const again = await Promise.all([chat(), chat(), chat()]);
    expect(again.every((r) => r.status === 200)).toBe(true);
    expect(one.count('/chat/completions')).toBeGreaterThan(hitsWhileBroken);
    health.dispose();
    breaker.dispose();
  });
});
