import { Endpoint } from '@lb/core';
import { fakeKey, startRedis } from '@lb/testing';
import Redis from 'ioredis';
import { describe, expect, it } from 'vitest';
import { type Admission, createSpend, RedisBudgetStore } from '../src/index.js';
import { spendErrorOf } from './helpers.js';

const T0 = Date.UTC(2026, 11, 7, 12);
const teamA = fakeKey('team-a');
const legacy = fakeKey('legacy');

describe('Spend: the calls a gateway makes', () => {
  const usage = { prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500 };

  it('authorizes, admits, settles from real usage, and counts the ledger', () => {
    const unknown: string[] = [];
    const spend = createSpend({
      keys: [{ name: 'team-a', key: teamA, models: ['gpt-4o-mini', 'my-llama'], budgetUsdDay: 0.001 }],
      apiKeys: [legacy],
      prices: { 'gpt-4o-mini': { input: 0.2, output: 0.8 } },
      onUnknownPrice: (m) => unknown.push(m),
      now: () => T0,
    });
    expect(spend.enabled).toBe(true);
    const endpoint = new Endpoint({ id: 'contract', url: 'https://c.example/v1' });
    const adm = spend.admit(teamA, 'gpt-4o-mini', 1000) as Admission;
    expect(adm).toMatchObject({ model: 'gpt-4o-mini', estimatedTokens: 1000, at: T0 });
    expect(adm.estimatedUsd).toBeCloseTo(0.0002, 15);
    expect(adm.key.name).toBe('team-a');
    const usd = spend.settle(adm, usage, 'gpt-4o-mini-2024-07-18', endpoint);
    expect(usd).toBeCloseTo((1000 * 0.2 + 500 * 0.8) / 1e6, 15);
    // $0.0006 of $0.001 spent: one more is admitted, then the budget is spent.
    spend.settle(spend.admit(teamA, 'gpt-4o-mini', 1000) as Admission, usage);
    const e = spendErrorOf(() => spend.admit(teamA, 'gpt-4o-mini', 1000));
    expect(e.code).toBe('budget_exceeded');
    expect(spendErrorOf(() => spend.admit(teamA, 'gpt-4o', 10)).code).toBe('model_not_allowed');
    expect(spendErrorOf(() => spend.admit(fakeKey('nobody'), 'gpt-4o', 10)).code).toBe('invalid_api_key');
    // An unnamed key: no budget, no counter, every model; an unpriced model costs undefined and is reported once.
    const l = spend.admit(legacy, 'my-llama', 10) as Admission;
    expect(l.estimatedUsd).toBeUndefined();
    expect(spend.settle(l, usage)).toBeUndefined();
    expect(unknown).toEqual(['my-llama']);
    // A failed request: a refund, no ledger entry.
    expect(spend.settle(spend.admit(legacy, 'gpt-4o-mini', 10) as Admission, undefined)).toBeUndefined();
    const today = spend.ledger.snapshot().today;
    expect(today.byKey['team-a'].requests).toBe(2);
    expect(today.byKey['team-a'].usd).toBeCloseTo(0.0012, 12);
    expect(today.byEndpoint.contract.requests).toBe(1);
    expect(today.byModel['my-llama']).toEqual({ usd: 0, tokens: 1500, requests: 1, unpriced: 1 });
  });

  it('with no keys configured it is off', () => {
    expect(createSpend().enabled).toBe(false);
  });

  it('admits over Redis in one round trip and refuses through the promise', async () => {
    const redis = await startRedis();
    const client = new Redis(redis.url, {
      enableOfflineQueue: false,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    try {
      await client.connect();
      const spend = createSpend({
        keys: [{ name: 'team-a', key: teamA, budgetTokensDay: 2000 }],
        store: new RedisBudgetStore(client),
        now: () => T0,
      });
      const adm = await spend.admit(teamA, 'gpt-4o-mini', 1000);
      spend.settle(adm, usage);
      await expect(
        (async () => {
          for (let i = 0; i < 5; i++) spend.settle(await spend.admit(teamA, 'gpt-4o-mini', 1000), usage);
        })(),
      ).rejects.toMatchObject({ code: 'budget_exceeded', budget: 'tokens_day' });
    } finally {
      client.disconnect();
      await redis.stop();
    }
  });
});
