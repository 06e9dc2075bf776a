import { attachBreaker } from '@lb/breaker';
import { configFromEnv } from '@lb/config-env';
import { ConfigError, createRouter, isLbError, isNoHealthyEndpointError, type Router } from '@lb/core';
import { attachRateLimit } from '@lb/ratelimit';
import OpenAI, { AzureOpenAI } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EnhancedOpenAIClient, OpenAIEnhancedService } from '../src/compat.js';
import { createOpenAI, LoadBalancedOpenAI } from '../src/index.js';
import { keyOf, type Pool, startPool } from './setup.js';

let pool: Pool;

beforeAll(async () => {
  pool = await startPool(2);
});
afterAll(() => pool.close());
beforeEach(() => {
  for (const u of pool.ups) {
    u.requests.length = 0;
    u.setDefault({ type: 'ok' });
  }
});

function build(extra: Partial<ConstructorParameters<typeof LoadBalancedOpenAI>[0]> = {}) {
  return new LoadBalancedOpenAI({
    endpoints: pool.endpoints([{ modelMap: { fast: 'gpt-4o-mini' } }, {}]),
    strategy: 'priority',
    backoff: { initialMs: 1, maxMs: 1 },
    defaultModel: 'gpt-4o',
    ...extra,
  } as ConstructorParameters<typeof LoadBalancedOpenAI>[0]);
}

describe('construction', () => {
  it('new LoadBalancedOpenAI({ endpoints, strategy }) is a real OpenAI client with SDK retries off', () => {
    const c = build();
    expect(c).toBeInstanceOf(OpenAI);
    expect(c.maxRetries).toBe(0);
    expect(c.router.strategy).toBe('priority');
    expect(c.router.endpoints.map((e) => e.id)).toEqual(['a', 'b']);
    // Router options went to the router, not the SDK.
    expect(c.router.config).not.toHaveProperty('defaultModel');
    expect(c.router.config.backoff).toEqual({ initialMs: 1, maxMs: 1 });
  });

  it('takes a config from @lb/config-env (router, defaultModel, stream timeouts)', async () => {
    const cfg = configFromEnv({
      OPENAI_API_KEY_1: pool.keys[1],
      OPENAI_BASE_URL_1: pool.ups[1].url,
      OPENAI_MODEL: 'gpt-4o-mini',
      OPENAI_CIRCUIT_BREAKER: 'false',
    });
    const c = new LoadBalancedOpenAI({ router: cfg });
    expect(new LoadBalancedOpenAI(cfg).router.endpoints[0].url).toBe(pool.ups[1].url);
    expect(c.defaultModel).toBe('gpt-4o-mini');
    expect(await c.generateText('hi')).toBe('Hello from b');
    expect(pool.ups[1].requests[0].json.model).toBe('gpt-4o-mini');
  });

  it('attaches a breaker (or any plugin) passed in `attach`', async () => {
    const c = build({ attach: [(r) => attachBreaker(r, { threshold: 1, halfOpenAfterMs: 60_000 })] });
    const breaker = c.attachments[0] as ReturnType<typeof attachBreaker>;
    expect(c.router.guards.map((g) => g.name)).toEqual(expect.arrayContaining(['provider', breaker.name]));
    pool.ups[0].next({ type: 'status', status: 500 });
    expect(await c.generateText('x')).toBe('Hello from b');
    expect(breaker.state('a')).toBe('open');
    expect(await c.generateText('y')).toBe('Hello from b');
    expect(pool.ups[0].count()).toBe(1); // the open circuit kept `a` out
  });

  it('attaches a rate limiter: an endpoint out of budget sends the call to the next one', async () => {
    const c = new LoadBalancedOpenAI({
      endpoints: pool.endpoints([{ limits: { rps: 1, burst: 1 } }, {}]),
      strategy: 'priority',
      attach: [(r) => attachRateLimit(r)],
    });
    expect(await c.generateText('one')).toBe('Hello from a');
    expect(await c.generateText('two')).toBe('Hello from b');
    expect(pool.ups[0].count()).toBe(1);
    expect(pool.ups[1].count()).toBe(1);
  });

  it('validates its options and names the received value', () => {
    expect(() => new LoadBalancedOpenAI({} as never)).toThrow(/endpoints.*router/);
    expect(() => build({ streamIdleTimeoutMs: -1 })).toThrow(/streamIdleTimeoutMs.*-1/);
    expect(() => build({ defaultModel: '' })).toThrow(ConfigError);
    expect(() => createOpenAI({} as never)).toThrow(/expected an @lb\/core Router/);
    expect(() => build({ attach: [42 as never] })).toThrow(/attach\[0\].*number/);
  });

  it('createOpenAI shares an existing router', () => {
    const router = createRouter({ endpoints: pool.endpoints() });
    const c = createOpenAI(router, { timeout: 1234 });
    expect(c.router).toBe(router);
    expect(c.timeout).toBe(1234);
  });
});

describe('helpers', () => {
  it('generateText sends one prompt (with an optional system message) and returns the text', async () => {
    const c = build();
    expect(await c.generateText('Say hi', 'fast', { system: 'Be brief', temperature: 0 })).toBe(
      'Hello from a',
    );
    const sent = pool.ups[0].requests[0].json;
    expect(sent).toMatchObject({
      model: 'gpt-4o-mini',
      temperature: 0,
      messages: [
        { role: 'system', content: 'Be brief' },
        { role: 'user', content: 'Say hi' },
      ],
    });
  });

  it('createChatCompletion defaults the model and returns the ChatCompletion', async () => {
    const c = build();
    const r = await c.createChatCompletion([{ role: 'user', content: 'x' }], { max_tokens: 5 });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].message.content).toBe('Hello from a');
    expect(pool.ups[0].requests[0].json).toMatchObject({ model: 'gpt-4o', max_tokens: 5 });
  });

  it('generateImage returns the images response', async () => {
    const c = build();
    const r = await c.generateImage('a fox', { size: '1024x1024' });
    expect(r.data?.[0]).toMatchObject({ url: 'https://images.example/a.png', revised_prompt: 'a fox' });
    expect(pool.ups[0].requests[0].json).toMatchObject({ prompt: 'a fox', size: '1024x1024' });
  });

  it('getKeyHealthStatus and getDetailedHealth report per endpoint, keys masked', async () => {
    const c = build();
    pool.ups[0].next({ type: 'status', status: 429, headers: { 'retry-after': '30' } });
    await c.generateText('x');
    const h = c.getKeyHealthStatus();
    expect(h).toMatchObject({ healthy: 1, total: 2 });
    const [a, b] = h.endpoints;
    expect(a).toMatchObject({ id: 'a', healthy: false, state: 'cooling', rateLimited: true, errorCount: 1 });
    expect(a.maskedKey).toMatch(/^sk-proj\.\.\./);
    expect(a.recoveryTime).toBeGreaterThan(Date.now() + 20_000);
    expect(b).toMatchObject({ id: 'b', healthy: true, state: 'healthy', successRate: 1, recoveryTime: null });
    expect(b.lastUsed).toBeGreaterThan(0);
    expect(b.responseTimeMs).toBeGreaterThanOrEqual(0);
    const d = c.getDetailedHealth();
    expect(d).toMatchObject({ status: 'degraded', healthy: 1, total: 2, strategy: 'priority' });
    expect(d.endpoints[0]).toMatchObject({ priority: 1, errorsByKind: { 'rate-limit': 1 }, lastStatus: 429 });
    expect(JSON.stringify(d)).not.toContain(pool.keys[0]);
  });

  it('getModelInfo lists models, who serves them, and per-model statistics', async () => {
    const c = build();
    await c.generateText('x', 'fast');
    await c.generateText('y', 'fast');
    await c.generateText('z');
    const info = c.getModelInfo();
    expect(info.defaultModel).toBe('gpt-4o');
    const fast = info.models.find((m) => m.model === 'fast')!;
    expect(fast).toMatchObject({ requests: 2, successes: 2, failures: 0, successRate: 1 });
    expect(fast.endpoints).toEqual([
      { id: 'a', upstreamModel: 'gpt-4o-mini', available: true },
      { id: 'b', upstreamModel: 'fast', available: true },
    ]);
    expect(info.models.find((m) => m.model === 'gpt-4o')?.requests).toBe(1);
    expect(info.totalRequests).toBe(3);
  });

  it('getDirectClient is a plain client bound to the best endpoint (no failover)', async () => {
    const c = build();
    c.router.setEndpointHealth('a', false);
    const direct = c.getDirectClient();
    expect(direct).not.toBeInstanceOf(LoadBalancedOpenAI);
    expect(direct.baseURL).toBe(pool.ups[1].url);
    const r = await direct.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.system_fingerprint).toBe('b');
    expect(keyOf(pool.ups[1].requests[0].headers)).toBe(pool.keys[1]);
    c.router.setEndpointHealth('b', false);
    let err: unknown;
    try {
      c.getDirectClient();
    } catch (e) {
      err = e;
    }
    expect(isNoHealthyEndpointError(err)).toBe(true);
  });

  it('getDirectClient gives an AzureOpenAI client for Azure endpoints', () => {
    const c = new LoadBalancedOpenAI({
      endpoints: [
        {
          id: 'az',
          url: 'https://my-resource.openai.azure.com',
          apiKey: 'azure-key-0123456789abcdef',
          provider: 'azure',
          meta: { apiVersion: '2024-10-21', deployments: { 'gpt-4o': 'prod-4o' } },
        },
      ],
    });
    const direct = c.getDirectClient('gpt-4o');
    expect(direct).toBeInstanceOf(AzureOpenAI);
    expect(direct.baseURL).toBe('https://my-resource.openai.azure.com/openai');
  });
});

describe('compat entry', () => {
  it('EnhancedOpenAIClient takes a list of keys plus fallback endpoints', async () => {
    const c = new EnhancedOpenAIClient({
      apiKeys: ['sk-wrong-key-0000000000000000', pool.keys[0]],
      baseURL: pool.ups[0].url,
      fallbackEndpoints: [{ id: 'backup', url: pool.ups[1].url, apiKey: pool.keys[1] }],
      defaultModel: 'gpt-4o',
    });
    expect(c).toBeInstanceOf(OpenAI);
    expect(c.router.endpoints.map((e) => [e.id, e.priority])).toEqual([
      ['key-1', 1],
      ['key-2', 2],
      ['backup', 3],
    ]);
    // Keys in order: key-1 is rejected (401), key-2 answers; the fallback is not needed.
    expect(await c.generateText('x')).toBe('Hello from a');
    expect(pool.ups[1].count()).toBe(0);
    expect(c.getKeyHealthStatus().endpoints[0]).toMatchObject({ id: 'key-1', state: 'unhealthy' });
  });

  it('OpenAIEnhancedService offers the helpers over a client', async () => {
    const s = new OpenAIEnhancedService({ endpoints: pool.endpoints(), defaultModel: 'gpt-4o' });
    expect(s.getClient()).toBeInstanceOf(LoadBalancedOpenAI);
    expect(await s.generateText('x')).toBe('Hello from a');
    expect(s.setEndpointHealth('a', false)).toBe(true);
    expect((await s.createChatCompletion([{ role: 'user', content: 'x' }])).system_fingerprint).toBe('b');
    expect(s.getKeyHealthStatus().healthy).toBe(1);
    expect(s.getDetailedHealth().endpoints).toHaveLength(2);
    expect(s.getModelInfo().totalRequests).toBe(2);
    expect(isLbError(new ConfigError('x'))).toBe(true);
  });
});

describe('token usage', () => {
  it('reports usage from JSON answers and from streams with include_usage (attempt:usage)', async () => {
    const c = build();
    const seen: { endpointId: string; usage: unknown }[] = [];
    c.router.on('attempt:usage', (e) => seen.push({ endpointId: e.endpointId, usage: e.usage }));
    const r = await c.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.usage).toEqual({ prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 });
    expect(seen).toEqual([
      { endpointId: 'a', usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 } },
    ]);
    const s = await c.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    for await (const ch of s) text += ch.choices[0]?.delta?.content ?? '';
    expect(text).toBe('Hello from a');
    expect(seen[1]).toEqual({
      endpointId: 'a',
      usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
    });
    // A stream without usage reports nothing.
    const quiet = await c.chat.completions.create({ model: 'gpt-4o', messages: [], stream: true });
    for await (const _ of quiet) {
      // drain
    }
    expect(seen).toHaveLength(2);
  });

  it('corrects a TPM budget with the tokens the answer really used', async () => {
    const c = build({
      endpoints: pool.endpoints([{ limits: { tpm: 100_000 } }, {}]),
      attach: [(r: Router) => attachRateLimit(r, { estimateTokens: () => 5_000 })],
    } as never);
    pool.ups[0].setDefault({
      type: 'ok',
      usage: { prompt_tokens: 40, completion_tokens: 60, total_tokens: 100 },
    });
    await c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    const tpm = c.router.snapshot().endpoints.find((e) => e.id === 'a')?.guards.ratelimit?.tpm as number;
    // Charged 5,000 estimated tokens up front, corrected to the 100 the answer reported (without the correction the
    // budget would stand near 95,000).
    expect(tpm).toBeGreaterThanOrEqual(99_800);
    expect(tpm).toBeLessThanOrEqual(100_000);
  });
});
