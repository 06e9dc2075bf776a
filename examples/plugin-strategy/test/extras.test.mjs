// The guard and the dialect of extras.mjs against the public contracts of @lb/testing.
import { Endpoint } from '@lb/core';
import { fakeKey, runDialectContract, runGuardContract } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import plugin, { drainTag, openaiOrg } from '../extras.mjs';

runGuardContract({ name: 'drain-tag', attach: (router) => router.addGuard(drainTag()) });
runDialectContract({
  dialect: openaiOrg,
  endpoint: new Endpoint({
    id: 'org',
    url: 'https://api.example.test/v1',
    apiKey: fakeKey('org'),
    provider: 'openai-org',
  }),
});

describe('extras.mjs', () => {
  it('exports its guard factory and its dialect as a plugin', () => {
    expect(plugin.guards).toEqual([drainTag]);
    expect(plugin.dialects).toEqual([openaiOrg]);
  });

  it('drain-tag refuses endpoints tagged "drain", saying why', () => {
    const g = drainTag();
    const req = { model: 'm', requestId: 'r' };
    expect(g.admit(new Endpoint({ id: 'a', url: 'http://127.0.0.1:9/v1' }), req, 0)).toBe(true);
    expect(g.admit(new Endpoint({ id: 'b', url: 'http://127.0.0.1:9/v1', tags: ['drain'] }), req, 0)).toEqual(
      {
        reason: 'tagged "drain"',
      },
    );
  });

  it('openai-org sends the organization from the endpoint meta', () => {
    const endpoint = new Endpoint({
      id: 'o',
      url: 'https://api.example.test/v1',
      apiKey: fakeKey('org'),
      provider: 'openai-org',
      meta: { organization: 'org-123' },
    });
    const up = openaiOrg.prepare({
      endpoint,
      operation: 'chat.completions',
      method: 'POST',
      path: '/chat/completions',
      headers: {},
      body: undefined,
      json: undefined,
      upstreamModel: undefined,
      stream: false,
    });
    expect(up.headers['openai-organization']).toBe('org-123');
    expect(up.url).toBe('https://api.example.test/v1/chat/completions');
  });
});
