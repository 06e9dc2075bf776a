import { attachBreaker } from '@lb/breaker';
import { ConfigError, createRouter, estimateTokens, registerStrategy, resolveStrategy } from '@lb/core';
import { attachRateLimit, createClientLimiter, MemoryStore } from '@lb/ratelimit';
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
