import { type Candidate, createRouter, Endpoint, type EndpointStats, strategyNames } from '@lb/core';
import { runStrategyContract } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import { cheapest, PriceTable, registerCheapest } from '../src/index.js';

const random = Math.random;

runStrategyContract({ name: 'cheapest', create: () => cheapest()({ random }) });

/** The statistics a strategy reads (the router keeps more). */
function stats(ewmaLatencyMs: number, latencySamples = 1): EndpointStats {
  return { inFlight: 0, ewmaLatencyMs, latencySamples } as EndpointStats;
}

function cand(
  id: string,
  index: number,
  o: { price?: object; latency?: number; samples?: number; upstreamModel?: string } = {},
): Candidate {
  return {
    endpoint: new Endpoint({
      id,
      url: `https://${id}.example/v1`,
      ...(o.price ? { meta: { price: o.price } } : {}),
    }),
    index,
    weight: 1,
    priority: 1,
    upstreamModel: o.upstreamModel,
    stats: stats(o.latency ?? 10, o.samples ?? 1),
  };
}

const ctx = (model?: string) => ({ model, requestId: undefined, attempt: 1 });

describe('cheapest', () => {
  it('prefers an endpoint with a discounted price over list price, whatever its latency', () => {
    const s = cheapest({ explorationRate: 0 })({ random });
    const c = [
      cand('list', 0, { latency: 5 }),
      cand('contract', 1, { price: { input: 0.05, output: 0.2 }, latency: 50 }),
    ];
    for (let i = 0; i < 50; i++) expect(s.pick(c, ctx('gpt-4o-mini'))?.endpoint.id).toBe('contract');
  });

  it('compares the upstream model each route sends: a cheaper model name wins', () => {
    const s = cheapest({ explorationRate: 0 })({ random });
    const c = [
      cand('big', 0, { upstreamModel: 'gpt-4o' }),
      cand('mini', 1, { upstreamModel: 'gpt-4o-mini-2024-07-18' }),
    ];
    expect(s.pick(c, ctx('fast'))?.endpoint.id).toBe('mini');
  });

  it('breaks a price tie by latency: never measured first, then the fastest; equal ones in turn', () => {
    const s = cheapest({ explorationRate: 0 })({ random });
    const slow = cand('slow', 0, { latency: 80 });
    const fast = cand('fast', 1, { latency: 20 });
    const fresh = cand('fresh', 2, { samples: 0, latency: 0 });
    const dear = cand('dear', 3, { price: { input: 100, output: 100 }, samples: 0 });
    expect(s.pick([slow, fast, fresh, dear], ctx('gpt-4o'))?.endpoint.id).toBe('fresh');
    expect(s.pick([slow, fast, dear], ctx('gpt-4o'))?.endpoint.id).toBe('fast');
    const twin = cand('twin', 4, { latency: 20 });
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add(s.pick([slow, fast, twin, dear], ctx('gpt-4o'))!.endpoint.id);
    expect([...seen].sort()).toEqual(['fast', 'twin']);
  });

  it('explores only within the cheapest price', () => {
    const s = cheapest({ explorationRate: 1 })({ random });
    const c = [
      cand('a', 0, { latency: 5 }),
      cand('b', 1, { latency: 50 }),
      cand('dear', 2, { upstreamModel: 'o1' }),
    ];
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(s.pick(c, ctx('gpt-4o-mini'))!.endpoint.id);
    expect([...seen].sort()).toEqual(['a', 'b']);
  });

  it('ranks endpoints without a price for the model after every priced one', () => {
    const s = cheapest({ explorationRate: 0 })({ random });
    const c = [
      cand('unpriced', 0, { latency: 1 }),
      cand('priced', 1, { price: { input: 50, output: 50 }, latency: 99 }),
    ];
    expect(s.pick(c, ctx('my-llama'))?.endpoint.id).toBe('priced');
  });

  it('uses the prices it is given (config overrides)', () => {
    const prices = new PriceTable({ prices: { 'gpt-4o': { input: 0.01, output: 0.01 } } });
    const s = cheapest({ prices, explorationRate: 0 })({ random });
    const c = [
      cand('mini', 0, { upstreamModel: 'gpt-4o-mini' }),
      cand('big', 1, { upstreamModel: 'gpt-4o' }),
    ];
    expect(s.pick(c, ctx())?.endpoint.id).toBe('big');
  });

  it('registers by name; a router spills from the contract to list price when the contract is down', () => {
    registerCheapest();
    expect(strategyNames()).toContain('cheapest');
    const router = createRouter({
      strategy: 'cheapest',
      endpoints: [
        { id: 'list', url: 'https://list.example/v1' },
        { id: 'contract', url: 'https://contract.example/v1', meta: { price: { input: 0.05, output: 0.2 } } },
      ],
    });
    expect(router.pick({ model: 'gpt-4o-mini' })?.endpoint.id).toBe('contract');
    router.setEndpointHealth('contract', false);
    expect(router.pick({ model: 'gpt-4o-mini' })?.endpoint.id).toBe('list');
  });

  it('validates its options', () => {
    expect(() => cheapest({ inputPerOutput: -1 })).toThrow(
      'inputPerOutput must be a number >= 0, received -1',
    );
    expect(() => cheapest({ prices: {} as never })).toThrow('prices must be a PriceTable');
  });
});
