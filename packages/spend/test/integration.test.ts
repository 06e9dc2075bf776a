import { createRouter, type Endpoint, type Router } from '@lb/core';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Budgets,
  cheapest,
  KeyRing,
  PriceTable,
  type SpendError,
  tokensOf,
  type UsageLike,
} from '../src/index.js';

/**
 * The calls a gateway makes, in process, against real upstreams on 127.0.0.1 driven by the official openai SDK:
 * authorize the client key, admit its budget with an estimate, route (cheapest), price the usage the upstream
 * returned, settle.
 */
describe('integration: keys, budgets, prices and cheapest over real upstreams and the openai SDK', () => {
  let contract: FakeUpstream;
  let list: FakeUpstream;
  let router: Router;
  const teamA = fakeKey('team-a');
  const teamB = fakeKey('team-b');
  const unknown: string[] = [];
  const prices = new PriceTable({ onUnknown: (m) => unknown.push(m) });
  const keys = new KeyRing([
    { name: 'team-a', key: teamA, models: ['gpt-4o-mini', 'text-embedding-3-small'], budgetUsdDay: 0.001 },
    { name: 'team-b', key: teamB, budgetUsdDay: 1 },
  ]);
  const budgets = new Budgets();
  // 1000 prompt tokens (768 cached) and 1000 completion tokens per answer.
  const usage = {
    prompt_tokens: 1000,
    completion_tokens: 1000,
    total_tokens: 2000,
    prompt_tokens_details: { cached_tokens: 768 },
  };

  beforeAll(async () => {
    [contract, list] = await Promise.all([
      startFakeUpstream({ name: 'contract', defaultBehaviour: { type: 'ok', usage: usage as never } }),
      startFakeUpstream({ name: 'list', defaultBehaviour: { type: 'ok', usage: usage as never } }),
    ]);
    router = createRouter({
      strategy: cheapest({ prices, explorationRate: 0 }),
      endpoints: [
        { id: 'list', url: list.url, apiKey: fakeKey('up-list') },
        {
          id: 'contract',
          url: contract.url,
          apiKey: fakeKey('up-c'),
          meta: { price: { input: 0.05, cachedInput: 0.025, output: 0.2 } },
        },
      ],
    });
  });
  afterAll(async () => {
    await Promise.all([contract?.close(), list?.close()]);
  });

  /** One request through the gateway's steps; answers the cost and who served, or the refusal. */
  async function chat(
    secret: string,
    model: string,
  ): Promise<{ usd: number | undefined; endpoint: string } | SpendError> {
    const key = keys.authorize(secret, model);
    const estTokens = 1000;
    const est = prices.costOf({ prompt_tokens: estTokens }, model);
    const refused = await budgets.admit(key, est, estTokens);
    if (refused) return refused;
    let served: Endpoint | undefined;
    let got: UsageLike | undefined;
    try {
      const completion = await router.execute({ model }, async (ctx) => {
        served = ctx.endpoint;
        const client = new OpenAI({ baseURL: ctx.endpoint.url, apiKey: ctx.endpoint.apiKey, maxRetries: 0 });
        return client.chat.completions.create(
          { model: ctx.upstreamModel ?? model, messages: [{ role: 'user', content: 'hi' }] },
          { signal: ctx.signal },
        );
      });
      got = completion.usage;
    } finally {
      const usd = got ? prices.costOf(got, model, served) : 0;
      await budgets.settle(key, est, estTokens, usd, got ? tokensOf(got) : 0);
    }
    return { usd: prices.costOf(got, model, served), endpoint: served!.id };
  }

  it('routes to the discounted endpoint and prices the real usage with its price, cached tokens included', async () => {
    const r = await chat(teamB, 'gpt-4o-mini');
    expect(r).toEqual({ usd: expect.any(Number), endpoint: 'contract' });
    expect((r as { usd: number }).usd).toBeCloseTo((232 * 0.05 + 768 * 0.025 + 1000 * 0.2) / 1e6, 15);
    expect(contract.requests.length).toBe(1);
    expect(list.requests.length).toBe(0);
  });

  it('a key over its daily budget gets 429 budget_exceeded; another key does not', async () => {
    // Each answer costs $0.0002312 at the contract price; the budget is $0.001: five answers, the sixth is refused.
    const served: string[] = [];
    let refusal: SpendError | undefined;
    for (let i = 0; i < 10 && !refusal; i++) {
      const r = await chat(teamA, 'gpt-4o-mini');
      if ('code' in r) refusal = r;
      else served.push(r.endpoint);
    }
    expect(served.length).toBe(5);
    expect(refusal?.status).toBe(429);
    expect(refusal?.code).toBe('budget_exceeded');
    expect(refusal?.message).toMatch(
      /^Budget exceeded for key "team-a": USD per day \(\$0\.001\) is spent\. It resets at \d{4}-\d\d-\d\dT00:00:00\.000Z/,
    );
    expect(refusal?.retryAfterMs).toBeGreaterThan(0);
    expect(refusal?.retryAfterMs).toBeLessThanOrEqual(86_400_000);
    expect(JSON.stringify(refusal?.toOpenAIError())).not.toContain(teamA);
    expect(await chat(teamB, 'gpt-4o-mini')).toMatchObject({ endpoint: 'contract' });
  });

  it('a key limited to its models gets 403 for another', () => {
    expect(() => keys.authorize(teamA, 'gpt-4o')).toThrow(
      expect.objectContaining({ status: 403, code: 'model_not_allowed' }),
    );
  });

  it('prices embeddings from the SDK response, and an unpriced model as unknown, reported once', async () => {
    const client = new OpenAI({ baseURL: list.url, apiKey: 'x', maxRetries: 0 });
    const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b', 'c'] });
    expect(prices.costOf(e.usage, e.model)).toBeCloseTo((12 * 0.02) / 1e6, 15);
    // On the contract endpoint, its own price covers any model; on list price, my-llama has none.
    expect(await chat(teamB, 'my-llama')).toMatchObject({ endpoint: 'contract', usd: expect.any(Number) });
    router.setEndpointHealth('contract', false);
    try {
      expect(await chat(teamB, 'my-llama')).toEqual({ endpoint: 'list', usd: undefined });
      expect(await chat(teamB, 'my-llama')).toEqual({ endpoint: 'list', usd: undefined });
    } finally {
      router.setEndpointHealth('contract', true);
    }
    expect(unknown).toEqual(['my-llama']);
  });
});
