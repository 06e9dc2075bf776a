import { createRouter } from '@lb/core';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRouterFetch, LoadBalancedOpenAI, PLACEHOLDER_BASE_URL } from '../src/index.js';
import { type Pool, startPool } from './setup.js';

// The README's drop-in client and other-SDK snippets, as copied (no breaker attached), with the first endpoint dead:
// the router's default outlier ejection takes it out after 5 failures in a row, so it sees 5 of 20 requests.
let pool: Pool;
beforeAll(async () => {
  pool = await startPool(2);
  pool.ups[0].setDefault({ type: 'status', status: 500 });
});
afterAll(() => pool.close());

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }] };

describe('a default setup ejects a dead endpoint', () => {
  it('LoadBalancedOpenAI({ endpoints }): the dead endpoint gets 5 of 20 requests', async () => {
    const before = pool.ups[0].count('/chat/completions');
    const client = new LoadBalancedOpenAI({ endpoints: pool.endpoints() });
    for (let i = 0; i < 20; i++) {
      const { response } = await client.chat.completions.create(chat).withResponse();
      expect(response.headers.get('x-lb-endpoint')).toBe('b');
    }
    expect(pool.ups[0].count('/chat/completions') - before).toBe(5);
  });

  it("another SDK through the router's fetch (retries 0): 5 of 20", async () => {
    const before = pool.ups[0].count('/chat/completions');
    const router = createRouter({ endpoints: pool.endpoints() });
    const sdk = new OpenAI({
      baseURL: PLACEHOLDER_BASE_URL,
      apiKey: 'unused',
      fetch: createRouterFetch(router),
      maxRetries: 0,
    });
    for (let i = 0; i < 20; i++)
      expect((await sdk.chat.completions.create(chat)).system_fingerprint).toBe('b');
    expect(pool.ups[0].count('/chat/completions') - before).toBe(5);
    expect(router.snapshot().endpoints[0]).toMatchObject({ status: 'unhealthy', available: false });
  });
});
