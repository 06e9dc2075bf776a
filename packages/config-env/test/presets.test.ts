import { createRouter } from '@lb/core';
import { fakeKey } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import {
  createMultiConfig,
  createOpenAIWithProxy,
  createWithProxy,
  isConfigValidationError,
  presets,
} from '../src/index.js';

const A = fakeKey('a');
const B = fakeKey('b');

describe('presets', () => {
  it('createWithProxy: official first, proxy as backup', () => {
    const c = createWithProxy(A, B, 'https://proxy.example/v1', { maxRetries: 1 });
    expect(c.router.endpoints.map((e) => [e.id, e.url, e.priority, e.apiKey])).toEqual([
      ['official', 'https://api.openai.com/v1', 1, A],
      ['proxy', 'https://proxy.example/v1', 2, B],
    ]);
    expect(c.router.maxRetries).toBe(1);
    expect(c.source).toEqual({ kind: 'preset', schemes: ['proxy'] });
    expect(createRouter(c.router).pick({})?.endpoint.id).toBe('official');
    expect(createOpenAIWithProxy).toBe(createWithProxy);
  });

  it('createMultiConfig: names endpoints after the group, accepts keys or objects, validates', () => {
    const c = createMultiConfig(
      'team',
      [A, { apiKey: B, baseURL: 'https://b.example/v1', weight: 2, maxRps: 3 }],
      {
        strategy: 'weighted-random',
        breaker: { threshold: 2 },
        healthCheckIntervalMs: 10_000,
      },
    );
    expect(c.router.endpoints.map((e) => [e.id, e.weight])).toEqual([
      ['team-1', 1],
      ['team-2', 2],
    ]);
    expect(c.router.endpoints[1].limits).toEqual({ rps: 3 });
    expect(c.breaker.threshold).toBe(2);
    expect(c.healthCheck).toMatchObject({ enabled: true, intervalMs: 10_000 });
    try {
      createMultiConfig('team', [{ key: A, url: 'nope', priority: 0 }]);
      expect.unreachable();
    } catch (e) {
      expect(isConfigValidationError(e) && e.errors).toEqual([
        { path: 'endpoints[0].base_url', message: 'not a URL: "nope"' },
        { path: 'endpoints[0].priority', message: 'expected an integer from 1 to 10, received 0' },
      ]);
    }
    expect(() => createMultiConfig('', [])).toThrow(
      'createMultiConfig: name must be a non-empty string, received ""',
    );
  });

  it('loadBalanced: equal endpoints taking turns', () => {
    const c = presets.loadBalanced([
      { key: A, url: 'https://a.example/v1' },
      { key: B, url: 'https://b.example/v1' },
    ]);
    expect(c.router.strategy).toBe('round-robin');
    const router = createRouter(c.router);
    expect([1, 2, 3, 4].map(() => router.pick({})?.endpoint.id)).toEqual([
      'endpoint-1',
      'endpoint-2',
      'endpoint-1',
      'endpoint-2',
    ]);
  });

  it('development: one key, no failover, no retries, low RPS; key from OPENAI_API_KEY', () => {
    const c = presets.development(undefined, { env: { OPENAI_API_KEY: A } });
    expect(c.router).toMatchObject({ failover: false, maxRetries: 0 });
    expect(c.router.endpoints).toEqual([
      expect.objectContaining({ id: 'dev', apiKey: A, limits: { rps: 2 } }),
    ]);
    expect(() => presets.development(undefined, { env: {} })).toThrow(/endpoints\[0\]\.api_key: missing/);
  });
});
