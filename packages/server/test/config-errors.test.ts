import { attachBreaker } from '@lb/breaker';
import {
  ConfigError,
  createRouter,
  Endpoint,
  estimateTokens,
  registerStrategy,
  resolveStrategy,
} from '@lb/core';
import { fallbackConfigFromEnv, parsePercentile } from '@lb/exchange';
import { createOpenAI, createRouterFetch } from '@lb/openai-adapter';
import { EnhancedOpenAIClient } from '@lb/openai-adapter/compat';
import { azureDialect, createAnthropicDialect, registerDialect } from '@lb/providers';
import { attachRateLimit, createClientLimiter, MemoryStore } from '@lb/ratelimit';
import {
  Budgets,
  cheapest,
  KeyRing,
  MemoryBudgetStore,
  PriceTable,
  RedisBudgetStore,
  SpendLedger,
} from '@lb/spend';
import { describe, expect, it } from 'vitest';
import { createObservability } from '../src/observability/index.js';

/** Every bad option, in every package, is a `ConfigError` that names what it received (never a bare TypeError). */
const router = () => createRouter({ endpoints: [{ id: 'a', url: 'http://127.0.0.1:9/v1' }] });

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('ConfigError for every bad option', () => {
  it('attachBreaker(router, { threshold: 0 }) names the value', () => {
    expect(configError(() => attachBreaker(router(), { threshold: 0 })).message).toMatch(
      /breaker\.threshold.*received 0/,
    );
  });

  it.each([
    [
      'registerStrategy without a factory',
      () => registerStrategy('x', undefined as never),
      /registerStrategy/,
    ],
    ['resolveStrategy of an unknown name', () => resolveStrategy('no-such-strategy'), /no-such-strategy/],
    ['addGuard without admit', () => router().addGuard({ name: 'g' } as never), /addGuard/],
    [
      'an endpoint URL that is not http(s)',
      () => createRouter({ endpoints: [{ url: 'ftp://x' }] }),
      /ftp:\/\/x/,
    ],
    ['estimateTokens charsPerToken 0', () => estimateTokens({}, { charsPerToken: 0 }), /received 0/],
    ['attachRateLimit with a non-function now', () => attachRateLimit(router(), { now: 5 as never }), /now/],
    [
      'createClientLimiter requests 0',
      () => createClientLimiter({ requests: 0, windowMs: 1000 }),
      /received 0/,
    ],
    ['MemoryStore sweepEvery 0', () => new MemoryStore({ sweepEvery: 0 }), /received 0/],
    ['createObservability logLevel loud', () => createObservability(router(), { logLevel: 'loud' }), /loud/],
  ])('%s', (_name, fn, message) => {
    expect(configError(fn).message).toMatch(message);
  });
});

// The packages that threw a TypeError for a bad option (issue 22 part 6) now throw a ConfigError naming it. TypeError
// stays only where code breaks a JS type contract, not config: an unknown event name (`breaker.on`,
// `healthChecks.on`), a method's own arguments (`generateText(prompt)`, `createChatCompletion(messages)`,
// `generateImage(prompt)`) and the test kit's `runDialectContract` fixture check.
describe('ConfigError for every bad option: spend, providers, exchange, adapter', () => {
  it.each([
    ['KeyRing keys not an array', () => new KeyRing(5 as never), /KeyRing: keys/],
    ['KeyRing a key without a name', () => new KeyRing([{ key: 'k'.repeat(20) } as never]), /name/],
    [
      'PriceTable a negative price',
      () => new PriceTable({ prices: { m: { input: -1, output: 1 } } }),
      /received -1/,
    ],
    ['cheapest inputPerOutput -1', () => cheapest({ inputPerOutput: -1 }), /inputPerOutput.*-1/],
    ['Budgets replicas 0', () => new Budgets({ replicas: 0 }), /replicas.*0/],
    ['SpendLedger maxLabels 0', () => new SpendLedger({ maxLabels: 0 }), /maxLabels.*0/],
    ['MemoryBudgetStore sweepEvery 0', () => new MemoryBudgetStore({ sweepEvery: 0 }), /sweepEvery.*0/],
    ['RedisBudgetStore without a client', () => new RedisBudgetStore(null as never), /RedisBudgetStore/],
    ['registerDialect of a number', () => registerDialect(5 as never), /registerDialect/],
    [
      'anthropic dialect defaultMaxTokens 0',
      () => createAnthropicDialect({ defaultMaxTokens: 0 }),
      /received 0/,
    ],
    [
      'LB_FALLBACKS not JSON',
      () => fallbackConfigFromEnv((n) => (n === 'LB_FALLBACKS' ? '{' : undefined)),
      /LB_FALLBACKS/,
    ],
    ['hedge_after not a percentile', () => parsePercentile('fast'), /"fast"/],
    [
      'createRouterFetch fetch not a function',
      () => createRouterFetch(router(), { fetch: 5 as never }),
      /fetch.*5/,
    ],
    ['createOpenAI without a router', () => createOpenAI({} as never), /createOpenAI/],
    [
      'EnhancedOpenAIClient apiKeys not an array',
      () => new EnhancedOpenAIClient({ apiKeys: 'k' as never }),
      /apiKeys/,
    ],
  ])('%s', (_name, fn, message) => {
    expect(configError(fn).message).toMatch(message);
  });

  it('azure meta: a ConfigError naming the endpoint, the field and the value', () => {
    const endpoint = new Endpoint({
      id: 'az',
      url: 'https://x.openai.azure.com',
      provider: 'azure',
      meta: { auth: 'basic' },
    });
    // The settings are read first: the rest of the request does not matter here.
    const req = { endpoint } as unknown as Parameters<typeof azureDialect.prepare>[0];
    expect(configError(() => azureDialect.prepare(req)).message).toMatch(/"az".*meta\.auth.*"basic"/);
  });
});
