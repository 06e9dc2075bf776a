import { attachBreaker } from '@lb/breaker';
import { createRouter, type Router } from '@lb/core';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachRateLimit, estimateTokens } from '../src/index.js';

describe('integration: three real upstreams on 127.0.0.1 with injected 500s and 429s', () => {
  let ups: FakeUpstream[] = [];
  beforeAll(async () => {
    ups = await Promise.all(['u1', 'u2', 'u3'].map((name) => startFakeUpstream({ name })));
  });
  afterAll(async () => {
    await Promise.all(ups.map((u) => u.close()));
  });

  async function chat(router: Router, i: number) {
    const body = {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `hello ${i}` }],
      max_tokens: 20,
    };
    const text = JSON.stringify(body);
    const res = await router.execute(
      { model: 'gpt-4o-mini', estimatedTokens: estimateTokens(body) },
      async (ctx) => {
        const r = await fetch(`${ctx.endpoint.url}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.endpoint.apiKey}` },
          body: text,
          signal: ctx.signal,
        });
        if (r.ok) {
          const json = (await r.clone().json()) as { usage?: { total_tokens: number } };
          if (json.usage) ctx.reportUsage(json.usage);
        }
        return r;
      },
      { discard: (r) => r.body?.cancel() },
    );
    expect(res.status).toBe(200);
    return (await res.json()) as { system_fingerprint?: string };
  }

  it('every request succeeds while limits, 500s, 429s and remaining headers steer traffic', async () => {
    const [u1, u2, u3] = ups;
    const router = createRouter({
      endpoints: [
        { id: 'u1', url: u1.url, apiKey: fakeKey('u1'), limits: { rps: 1000, burst: 4, tpm: 100_000 } },
        { id: 'u2', url: u2.url, apiKey: fakeKey('u2'), limits: { rpm: 600 } },
        { id: 'u3', url: u3.url, apiKey: fakeKey('u3') },
      ],
      strategy: 'round-robin',
      maxRetries: 5,
      backoff: { initialMs: 1, maxMs: 5 },
      maxWaitMs: 2000,
    });
    const limits = attachRateLimit(router);
    const breakers = attachBreaker(router, { threshold: 3, halfOpenAfterMs: 100 });
    expect(router.guards.map((g) => g.name).sort()).toEqual(['breaker', 'ratelimit']);
    u1.next({ type: 'status', status: 500 }, { type: 'status', status: 502 });
    u2.next(
      { type: 'status', status: 429, headers: { 'retry-after-ms': '150' } },
      // Spent by other clients of the key: stop sending before the provider says 429.
      {
        type: 'ok',
        headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '200ms' },
      },
    );
    u3.next(
      { type: 'status', status: 503 },
      { type: 'status', status: 429, headers: { 'retry-after': '0' } },
    );

    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => chat(router, i)));
    expect(results).toHaveLength(24);
    const answered = new Set(results.map((r) => r.system_fingerprint));
    expect(answered.size).toBeGreaterThan(1);
    // Every injected fault was met and survived.
    expect(
      u1.count('/chat/completions') + u2.count('/chat/completions') + u3.count('/chat/completions'),
    ).toBe(
      24 + 5, // five failures (500, 502, 429, 503, 429); the remaining-0 reply is a success
    );
    const snap = limits.snapshot();
    expect(snap.u2.upstream === undefined || snap.u2.upstream.remainingRequests === 0).toBe(true);
    expect(JSON.stringify(snap)).not.toContain(fakeKey('u1'));
    breakers.dispose();
    limits.dispose();
    expect(router.guards).toHaveLength(0);
  });
});
