import { isLbError } from '@lb/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClientLimiter, estimateTokens, isRateLimitedError, RateLimitedError } from '../src/index.js';

const T0 = Date.UTC(2025, 0, 1); // a multiple of every window used here

describe('createClientLimiter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fixed: N per window, per client, with remaining, resetAt and the time to the next allowed request', () => {
    const l = createClientLimiter({ requests: 3, windowMs: 10_000, algorithm: 'fixed' });
    expect([1, 2, 3].map(() => l.take('k1').remaining)).toEqual([2, 1, 0]);
    vi.advanceTimersByTime(4000);
    expect(l.take('k1')).toEqual({
      allowed: false,
      remaining: 0,
      limit: 3,
      retryAfterMs: 6000,
      resetAt: T0 + 10_000,
    });
    expect(l.take('k2').allowed).toBe(true);
    vi.advanceTimersByTime(6000);
    expect(l.take('k1')).toMatchObject({ allowed: true, remaining: 2 });
  });

  it('sliding (default): no double burst across the window edge, and an exact retry time', () => {
    const l = createClientLimiter({ requests: 4, windowMs: 1000 });
    expect(l.algorithm).toBe('sliding');
    vi.advanceTimersByTime(900);
    for (let i = 0; i < 4; i++) expect(l.take('c').allowed).toBe(true);
    vi.advanceTimersByTime(100); // new window; the previous one still weighs 100%
    const r = l.take('c');
    expect(r.allowed).toBe(false);
    // 4 * (1 - x/1000) <= 3  →  x >= 250 ms into the new window.
    expect(r.retryAfterMs).toBe(250);
    vi.advanceTimersByTime(249);
    expect(l.take('c').allowed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(l.take('c')).toMatchObject({ allowed: true, remaining: 0 });
    const fixed = createClientLimiter({ requests: 4, windowMs: 1000, algorithm: 'fixed' });
    vi.setSystemTime(T0 + 900);
    for (let i = 0; i < 4; i++) fixed.take('c');
    vi.setSystemTime(T0 + 1000);
    expect(fixed.take('c').allowed).toBe(true); // the burst a sliding window prevents
  });

  it('reset forgets a client; an injected clock is used', () => {
    let now = 0;
    const l = createClientLimiter({ requests: 1, windowMs: 1000, now: () => now });
    expect(l.take('x').allowed).toBe(true);
    expect(l.take('x').allowed).toBe(false);
    l.reset('x');
    expect(l.take('x').allowed).toBe(true);
    now = 2000;
    expect(l.take('x').allowed).toBe(true);
  });

  it('validates its options and names the received value', () => {
    expect(() => createClientLimiter({ requests: 0, windowMs: 1 })).toThrow(
      'requests must be an integer >= 1, received 0',
    );
    expect(() => createClientLimiter({ requests: 1.5, windowMs: 1 })).toThrow('received 1.5');
    expect(() => createClientLimiter({ requests: 1, windowMs: -5 })).toThrow(
      'windowMs must be a number > 0, received -5',
    );
    expect(() => createClientLimiter({ requests: 1, windowMs: 1, algorithm: 'leaky' as never })).toThrow(
      `received "leaky"`,
    );
    expect(() => createClientLimiter(undefined as never)).toThrow('expected options');
  });
});

describe('RateLimitedError', () => {
  it('is a branded 429 that renders as OpenAI error JSON', () => {
    const e = RateLimitedError.fromClient({ limit: 60, retryAfterMs: 1234.2 }, 60_000);
    expect(isRateLimitedError(e)).toBe(true);
    expect(isLbError(e)).toBe(true);
    expect(e).toMatchObject({
      status: 429,
      retryAfterMs: 1235,
      limit: 60,
      scope: 'client',
      name: 'RateLimitedError',
    });
    expect(e.toOpenAIError()).toEqual({
      error: {
        message: 'Rate limit reached for this client: 60 requests per 60000 ms. Try again in 1235 ms.',
        type: 'rate_limit_error',
        code: 'rate_limit_exceeded',
        param: null,
      },
    });
    expect(JSON.parse(JSON.stringify(e))).toEqual(e.toOpenAIError());
    // The brand survives a second copy of the package (no instanceof).
    expect(isRateLimitedError({ ...e, [Symbol.for('lb.error')]: true, isRateLimitedError: true })).toBe(true);
    expect(isRateLimitedError(new Error('x'))).toBe(false);
    expect(isRateLimitedError(null)).toBe(false);
  });
});

describe('estimateTokens', () => {
  it('counts chat messages, parts, images and the completion budget', () => {
    const text = 'x'.repeat(400); // ~100 tokens
    expect(estimateTokens({ messages: [{ role: 'user', content: text }] })).toBe(3 + 4 + 100);
    expect(estimateTokens({ messages: [{ role: 'user', content: text }], max_tokens: 50, n: 2 })).toBe(207);
    expect(
      estimateTokens(
        { messages: [{ role: 'user', content: text }], max_tokens: 50 },
        { includeCompletion: false },
      ),
    ).toBe(107);
    expect(
      estimateTokens({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
            ],
          },
        ],
        max_completion_tokens: 10,
      }),
    ).toBe(3 + 4 + 100 + 85 + 10);
  });

  it('counts prompts, embeddings inputs (strings or token ids) and responses input', () => {
    expect(estimateTokens({ prompt: 'abcdefgh' })).toBe(2);
    expect(estimateTokens({ input: ['abcd', 'efgh'] })).toBe(2);
    expect(estimateTokens({ input: [1, 2, 3, 4, 5] })).toBe(5);
    expect(estimateTokens({ input: 'abcd', instructions: 'abcd', max_output_tokens: 7 })).toBe(9);
    expect(estimateTokens(null)).toBe(0);
    expect(estimateTokens('text')).toBe(0);
    expect(() => estimateTokens({}, { charsPerToken: 0 })).toThrow('received 0');
  });
});
