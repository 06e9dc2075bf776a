// The public contract every strategy runs, from @lb/testing, plus this strategy's own promise. Runs here (vitest) and,
// against the published tarballs, in a fresh npm project outside the workspace (scripts/pack-smoke.mjs).
import { Endpoint } from '@lb/core';
import { runStrategyContract } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import plugin, { modelAffinity } from '../strategy.mjs';

runStrategyContract({ name: 'model-affinity', create: () => modelAffinity({ random: Math.random }) });

describe('model-affinity', () => {
  const candidates = ['a', 'b', 'c', 'd'].map((id, index) => ({
    endpoint: new Endpoint({ id, url: `http://127.0.0.1:9/${id}` }),
    index,
    weight: 1,
    priority: 1,
    upstreamModel: undefined,
    stats: { inFlight: 0 },
  }));
  const pick = (s, model) => s.pick(candidates, { model, requestId: undefined, attempt: 1 });

  it('is what the plugin registers, under its name', () => {
    expect(plugin.strategies['model-affinity']).toBe(modelAffinity);
  });

  it('sends one model to one endpoint, every time, from any instance (replica)', () => {
    const first = pick(modelAffinity(), 'gpt-4o-mini');
    for (let i = 0; i < 20; i++) expect(pick(modelAffinity(), 'gpt-4o-mini')).toBe(first);
  });

  it('spreads models over the endpoints', () => {
    const s = modelAffinity();
    const used = new Set(Array.from({ length: 40 }, (_, i) => pick(s, `model-${i}`).endpoint.id));
    expect(used.size).toBeGreaterThan(1);
  });
});
