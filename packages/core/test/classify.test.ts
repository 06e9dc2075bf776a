import { describe, expect, it } from 'vitest';
import { classify, isTimeoutError, parseDuration, retryAfterFrom } from '../src/index.js';

describe('classify', () => {
  const table: [
    string,
    Parameters<typeof classify>[0],
    { kind: string; failover: boolean; breaker: boolean; retryAfterMs?: number },
  ][] = [
    ['200', { status: 200 }, { kind: 'success', failover: false, breaker: false }],
    ['201', { status: 201 }, { kind: 'success', failover: false, breaker: false }],
    ['304', { status: 304 }, { kind: 'success', failover: false, breaker: false }],
    ['400 bad request', { status: 400 }, { kind: 'client', failover: false, breaker: false }],
    ['404 not found', { status: 404 }, { kind: 'client', failover: false, breaker: false }],
    ['413 too large', { status: 413 }, { kind: 'client', failover: false, breaker: false }],
    ['422', { status: 422 }, { kind: 'client', failover: false, breaker: false }],
    ['401', { status: 401 }, { kind: 'auth', failover: true, breaker: false }],
    ['403', { status: 403 }, { kind: 'auth', failover: true, breaker: false }],
    ['408', { status: 408 }, { kind: 'server', failover: true, breaker: true }],
    ['409', { status: 409 }, { kind: 'server', failover: true, breaker: true }],
    ['500', { status: 500 }, { kind: 'server', failover: true, breaker: true }],
    ['502', { status: 502 }, { kind: 'server', failover: true, breaker: true }],
    [
      '503',
      { status: 503, headers: { 'retry-after': '3' } },
      { kind: 'server', failover: true, breaker: true, retryAfterMs: 3000 },
    ],
    ['529 overloaded', { status: 529 }, { kind: 'server', failover: true, breaker: true }],
    ['429 no header', { status: 429 }, { kind: 'rate-limit', failover: true, breaker: false }],
    [
      '429 retry-after s',
      { status: 429, headers: { 'retry-after': '2' } },
      { kind: 'rate-limit', failover: true, breaker: false, retryAfterMs: 2000 },
    ],
    [
      '429 retry-after-ms wins',
      { status: 429, headers: new Headers({ 'retry-after-ms': '1500', 'retry-after': '9' }) },
      { kind: 'rate-limit', failover: true, breaker: false, retryAfterMs: 1500 },
    ],
    [
      '429 x-ratelimit-reset',
      { status: 429, headers: { 'x-ratelimit-reset-requests': '1m30s', 'x-ratelimit-reset-tokens': '20ms' } },
      { kind: 'rate-limit', failover: true, breaker: false, retryAfterMs: 90_000 },
    ],
    [
      'error with status 429',
      { error: Object.assign(new Error('x'), { status: 429, headers: { 'retry-after': '1' } }) },
      { kind: 'rate-limit', failover: true, breaker: false, retryAfterMs: 1000 },
    ],
    [
      'error with status 400',
      { error: Object.assign(new Error('x'), { status: 400 }) },
      { kind: 'client', failover: false, breaker: false },
    ],
    [
      'ECONNRESET',
      { error: Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } }) },
      { kind: 'network', failover: true, breaker: true },
    ],
    [
      'ECONNREFUSED',
      { error: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) },
      { kind: 'network', failover: true, breaker: true },
    ],
    [
      'undici headers timeout',
      { error: Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' }) },
      { kind: 'timeout', failover: true, breaker: true },
    ],
    [
      'fetch TimeoutError',
      { error: new DOMException('timed out', 'TimeoutError') },
      { kind: 'timeout', failover: true, breaker: true },
    ],
    [
      'nested timeout cause',
      { error: new TypeError('fetch failed', { cause: { code: 'UND_ERR_CONNECT_TIMEOUT' } }) },
      { kind: 'timeout', failover: true, breaker: true },
    ],
    [
      'attempt timed out',
      { error: new Error('aborted'), timedOut: true },
      { kind: 'timeout', failover: true, breaker: true },
    ],
    [
      'caller aborted',
      { error: new DOMException('aborted', 'AbortError'), callerAborted: true },
      { kind: 'aborted', failover: false, breaker: false },
    ],
  ];
  it.each(table)('%s', (_name, input, want) => {
    const v = classify(input);
    expect(v.kind).toBe(want.kind);
    expect(v.failover).toBe(want.failover);
    expect(v.countsForBreaker).toBe(want.breaker);
    expect(v.retryAfterMs).toBe(want.retryAfterMs);
  });
});

describe('retryAfterFrom', () => {
  it('parses an HTTP date relative to now', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterFrom({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }, now)).toBe(5000);
  });
  it('ignores garbage', () => {
    expect(retryAfterFrom({ 'retry-after': 'soon' })).toBeUndefined();
    expect(retryAfterFrom({ 'retry-after-ms': '-5' })).toBeUndefined();
    expect(retryAfterFrom(undefined)).toBeUndefined();
  });
  it('reads the first value of a repeated header', () => {
    expect(retryAfterFrom({ 'retry-after': ['4', '9'] })).toBe(4000);
  });
});

describe('parseDuration', () => {
  it.each([
    ['1s', 1000],
    ['6m0s', 360_000],
    ['20ms', 20],
    ['1h2m3.5s', 3_723_500],
    ['0.5', 500],
  ])('%s = %d ms', (t, ms) => expect(parseDuration(t)).toBe(ms));
  it.each(['', 'abc', '5x', '1s junk'])('rejects %j', (t) => expect(parseDuration(t)).toBeUndefined());
});

describe('isTimeoutError', () => {
  it('does not call an AbortError a timeout', () => {
    expect(isTimeoutError(new DOMException('x', 'AbortError'))).toBe(false);
  });
});
