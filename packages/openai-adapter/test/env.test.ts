import { type ConfigValidationError, configFromEnv, SERVER_DEFAULTS } from '@lb/config-env';
import { ConfigError, createRouter } from '@lb/core';
import { STREAM_DEFAULTS } from '@lb/core/internal';
import { fallbackConfigFromEnv } from '@lb/exchange';
import { fakeKey } from '@lb/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createRouterFetch } from '../src/index.js';
import { bytesOption, envBool, msOption, readEnv } from '../src/internal/env.js';
import { hedgeOf } from '../src/internal/hedge.js';

// The adapter reads its variables itself (it cannot depend on @lb/config-env): the same names, units and rules, so
// a value means the same to LoadBalancedOpenAI as to lb-server. Each case is read by both and compared.
const key = fakeKey('env');
const set: string[] = [];
function withEnv(vars: Record<string, string>): void {
  for (const [k, v] of Object.entries(vars)) {
    process.env[k] = v;
    set.push(k);
  }
}
afterEach(() => {
  for (const k of set.splice(0)) delete process.env[k];
});
const server = (vars: Record<string, string>) => configFromEnv({ OPENAI_API_KEY: key, ...vars });

describe('environment variables the adapter reads, read as @lb/config-env reads them', () => {
  it.each([
    ['STREAM_IDLE_TIMEOUT', '45000', 'streamIdleTimeoutMs'],
    ['STREAM_IDLE_TIMEOUT', ' 30s ', 'streamIdleTimeoutMs'],
    ['STREAM_FIRST_BYTE_TIMEOUT', '1m30s', 'streamFirstByteTimeoutMs'],
    ['STREAM_PROBATION_HOLD', '2500ms', 'streamProbationHoldMs'],
    ['LB_MAX_STREAM_DURATION', '30m', 'maxStreamDurationMs'],
  ] as const)('%s=%j (ms, or text with units)', (name, value, field) => {
    withEnv({ [name]: value });
    expect(msOption(undefined, field, name, 1)).toBe(server({ [name]: value }).server[field]);
  });

  it.each([
    ['STREAM_PROBATION_MAX_BYTES', '1048576', 'streamProbationMaxBytes'],
    ['LB_MAX_SSE_EVENT_BYTES', ' 65536 ', 'maxEventBytes'],
  ] as const)('%s=%j (bytes)', (name, value, field) => {
    withEnv({ [name]: value });
    expect(bytesOption(undefined, field, name, 1)).toBe(server({ [name]: value }).server[field]);
  });

  it.each(['true', 'TRUE', '1', 'yes', 'on', 'false', '0', 'off'])('LB_STREAM_CONTINUE=%j', (value) => {
    withEnv({ LB_STREAM_CONTINUE: value });
    expect(envBool('LB_STREAM_CONTINUE')).toBe(server({ LB_STREAM_CONTINUE: value }).streamContinue ?? false);
  });

  it('LB_HEDGE_AFTER_MS and LB_HEDGE_BUDGET', () => {
    const vars = { LB_HEDGE_AFTER_MS: ' 250 ', LB_HEDGE_BUDGET: '0.2' };
    withEnv(vars);
    expect(hedgeOf(undefined)).toEqual(server(vars).hedge);
  });

  it('LB_FALLBACKS: the same chains, names trimmed', () => {
    const vars = { LB_FALLBACKS: '{"gpt-4o":[" gpt-4o-mini ","b"]}' };
    withEnv(vars);
    expect(fallbackConfigFromEnv(readEnv)?.default).toEqual(server(vars).fallbacks?.default);
  });

  it('OPENAI_MODEL: trimmed, and blank is unset', () => {
    withEnv({ OPENAI_MODEL: ' gpt-4o ' });
    expect(readEnv('OPENAI_MODEL')).toBe(server({ OPENAI_MODEL: ' gpt-4o ' }).defaultModel);
    withEnv({ OPENAI_MODEL: '  ' });
    expect(readEnv('OPENAI_MODEL')).toBeUndefined();
  });

  it.each([
    ['STREAM_IDLE_TIMEOUT', 'soon'],
    ['STREAM_PROBATION_MAX_BYTES', '0x10'],
    ['LB_STREAM_CONTINUE', 'maybe'],
    ['LB_HEDGE_BUDGET', '2'],
  ])('%s=%j: refused by both, naming the variable and the value', (name, value) => {
    withEnv({ [name]: value });
    let adapter: unknown;
    try {
      createRouterFetch(createRouter({ endpoints: [{ url: 'http://127.0.0.1:9/v1', apiKey: key }] }));
    } catch (e) {
      adapter = e;
    }
    expect(adapter).toBeInstanceOf(ConfigError);
    expect((adapter as Error).message).toContain(`${name}: expected`);
    expect((adapter as Error).message).toContain(JSON.stringify(value));
    let lb: ConfigValidationError | undefined;
    try {
      server({ [name]: value });
    } catch (e) {
      lb = e as ConfigValidationError;
    }
    expect(lb?.errors.map((i) => i.path)).toContain(name);
  });

  it('a client builds with STREAM_IDLE_TIMEOUT=30s and LB_STREAM_CONTINUE=yes, as lb-server starts with them', () => {
    withEnv({ STREAM_IDLE_TIMEOUT: '30s', LB_STREAM_CONTINUE: 'yes' });
    expect(() =>
      createRouterFetch(createRouter({ endpoints: [{ url: 'http://127.0.0.1:9/v1', apiKey: key }] })),
    ).not.toThrow();
    expect(server({ STREAM_IDLE_TIMEOUT: '30s', LB_STREAM_CONTINUE: 'yes' }).streamContinue).toBe(true);
  });

  it('the stream settings default to lb-server’s values (SERVER_DEFAULTS, the one declaration)', () => {
    for (const [k, v] of Object.entries(STREAM_DEFAULTS))
      expect(v, k).toBe(SERVER_DEFAULTS[k as keyof typeof STREAM_DEFAULTS]);
  });
});
