import { createRouter } from '@lb/core';
import { fakeKey } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import {
  type ConfigIssue,
  type ConfigValidationError,
  configFromEnv,
  createConfigFromEnv,
  createOpenAIConfigFromEnv,
  isConfigured,
  isConfigValidationError,
} from '../src/index.js';

const A = fakeKey('a');
const B = fakeKey('b');
const C = fakeKey('c');

/** The error a config throws, or fails the test. */
function errorOf(fn: () => unknown): ConfigValidationError {
  try {
    fn();
  } catch (e) {
    if (isConfigValidationError(e)) return e;
    throw e;
  }
  throw new Error('expected a ConfigValidationError');
}
const lines = (issues: readonly ConfigIssue[]) => issues.map((i) => `${i.path}: ${i.message}`);

describe('scheme 1: numbered endpoints', () => {
  it('reads every OPENAI_*_N variable, with gaps, in numeric order', () => {
    const c = configFromEnv({
      OPENAI_API_KEY_1: A,
      OPENAI_BASE_URL_1: 'https://a.example/v1/',
      OPENAI_PRIORITY_1: '1',
      OPENAI_WEIGHT_1: '3',
      OPENAI_MAX_RPS_1: '5',
      OPENAI_TIMEOUT_1: '15000',
      OPENAI_MODELS_1: 'gpt-4o, gpt-4o-mini,',
      OPENAI_API_KEY_10: C,
      OPENAI_ENABLED_10: 'false',
      OPENAI_API_KEY_3: B,
      OPENAI_BASE_URL_3: 'https://b.example/v1',
      OPENAI_PRIORITY_3: '2',
      OPENAI_TIMEOUT_3: '30s',
      OPENAI_NAME_3: 'backup',
      OPENAI_TAGS_3: 'eu,cheap',
      OPENAI_MAX_RPM_3: '600',
      OPENAI_MAX_TPM_3: '90000',
    });
    expect(c.source).toEqual({ kind: 'env', schemes: ['numbered'] });
    expect(c.router.endpoints.map((e) => e.id)).toEqual(['openai-1', 'backup', 'openai-10']);
    const [a, b, ten] = c.router.endpoints;
    expect(a).toMatchObject({
      url: 'https://a.example/v1',
      apiKey: A,
      priority: 1,
      weight: 3,
      timeoutMs: 15000,
      models: ['gpt-4o', 'gpt-4o-mini'],
      limits: { rps: 5 },
      enabled: true,
    });
    expect(b).toMatchObject({
      priority: 2,
      timeoutMs: 30000,
      tags: ['eu', 'cheap'],
      limits: { rpm: 600, tpm: 90000 },
    });
    expect(ten).toMatchObject({ url: 'https://api.openai.com/v1', enabled: false });
    // The output feeds the router as is.
    expect(createRouter(c.router).endpoints.map((e) => e.weight)).toEqual([3, 1, 1]);
  });

  it('numbered endpoints without their own URL use OPENAI_BASE_URL', () => {
    const c = configFromEnv({ OPENAI_API_KEY_1: A, OPENAI_BASE_URL: 'https://proxy.example/v1' });
    expect(c.router.endpoints[0].url).toBe('https://proxy.example/v1');
  });
});

describe('scheme 2: primary key plus fallback keys', () => {
  it('puts the primary first and fallbacks after it, in order, on one base URL', () => {
    const c = configFromEnv({
      OPENAI_API_KEY: A,
      OPENAI_API_KEY_FALLBACK_2: C,
      OPENAI_API_KEY_FALLBACK_1: B,
    });
    expect(c.source.schemes).toEqual(['fallback-keys']);
    expect(c.router.endpoints.map((e) => [e.id, e.priority, e.url, e.apiKey])).toEqual([
      ['openai-primary', 1, 'https://api.openai.com/v1', A],
      ['openai-fallback-1', 2, 'https://api.openai.com/v1', B],
      ['openai-fallback-2', 3, 'https://api.openai.com/v1', C],
    ]);
  });

  it('rotates among all keys with OPENAI_KEY_ROTATION_ENABLED, and reads the health check interval', () => {
    const c = configFromEnv({
      OPENAI_API_KEY: A,
      OPENAI_API_KEY_FALLBACK_1: B,
      OPENAI_BASE_URL: 'https://gw.example/v1',
      OPENAI_KEY_ROTATION_ENABLED: 'true',
      OPENAI_HEALTH_CHECK_INTERVAL: '15000',
    });
    expect(c.router.endpoints.map((e) => e.priority)).toEqual([1, 1]);
    expect(c.router.strategyOptions).toEqual({ withinGroup: 'round-robin' });
    expect(c.router.endpoints.every((e) => e.url === 'https://gw.example/v1')).toBe(true);
    expect(c.healthCheck).toEqual({ enabled: true, intervalMs: 15000, timeoutMs: 5000 });
  });
});

describe('scheme 3: one upstream', () => {
  it('reads UPSTREAM_URL with an optional key', () => {
    expect(configFromEnv({ UPSTREAM_URL: 'http://127.0.0.1:11434/v1' }).router.endpoints).toEqual([
      expect.objectContaining({ id: 'upstream', url: 'http://127.0.0.1:11434/v1', apiKey: undefined }),
    ]);
    const c = configFromEnv({ UPSTREAM_URL: 'https://gw.example/v1', UPSTREAM_API_KEY: A });
    expect(c.router.endpoints[0].apiKey).toBe(A);
    expect(c.source.schemes).toEqual(['upstream']);
  });
});

describe('mixing schemes and globals', () => {
  it('combines all three schemes into one pool with unique ids', () => {
    const c = configFromEnv({
      OPENAI_API_KEY_1: A,
      OPENAI_API_KEY: B,
      OPENAI_API_KEY_FALLBACK_1: C,
      UPSTREAM_URL: 'https://gw.example/v1',
    });
    expect(c.source.schemes).toEqual(['numbered', 'fallback-keys', 'upstream']);
    expect(c.router.endpoints.map((e) => e.id)).toEqual([
      'openai-1',
      'openai-primary',
      'openai-fallback-1',
      'upstream',
    ]);
    expect(() => createRouter(c.router)).not.toThrow();
  });

  it('reads every global and server variable, with units', () => {
    const c = configFromEnv({
      OPENAI_API_KEY: A,
      OPENAI_MODEL: 'gpt-4o-mini',
      OPENAI_FALLBACK_ENABLED: 'no',
      OPENAI_MAX_RETRIES: '5',
      OPENAI_BACKOFF_MS: '100',
      OPENAI_CIRCUIT_BREAKER: 'off',
      CIRCUIT_BREAKER_THRESHOLD: '3',
      CIRCUIT_BREAKER_TIMEOUT: '30',
      LB_STRATEGY: 'least_latency',
      HOST: '0.0.0.0',
      PORT: '3000',
      TIMEOUT: '45000',
      CONNECT_TIMEOUT: '5s',
      STREAM_PROBATION_HOLD: '2s',
      STREAM_PROBATION_MAX_BYTES: '1048576',
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_REQUESTS: '100',
      RATE_LIMIT_WINDOW: '1m',
      LOG_LEVEL: 'DEBUG',
      REQUEST_LOG_PATH: '/var/log/lb.jsonl',
      METRICS_ENABLED: '0',
      LB_RESPONSE_HEADERS: 'false',
      SHUTDOWN_TIMEOUT: '10000',
      LB_API_KEYS: 'client-key-one, client-key-two',
      LB_ADMIN_KEY: 'admin-key-secret',
      LB_REDIS_URL: 'redis://:redis-pass-word@10.0.0.5:6379/2',
    });
    expect(c.defaultModel).toBe('gpt-4o-mini');
    expect(c.router).toMatchObject({
      failover: false,
      maxRetries: 5,
      backoff: { initialMs: 100 },
      strategy: 'least-latency',
    });
    expect(c.breaker).toEqual({
      enabled: false,
      threshold: 3,
      halfOpenAfterMs: 30000,
      policy: 'consecutive',
    });
    expect(c.healthCheck.enabled).toBe(false);
    expect(c.server).toMatchObject({
      host: '0.0.0.0',
      port: 3000,
      timeoutMs: 45000,
      connectTimeoutMs: 5000,
      streamProbationHoldMs: 2000,
      streamProbationMaxBytes: 1048576,
      clientRateLimit: { enabled: true, requests: 100, windowMs: 60000 },
      logLevel: 'debug',
      requestLog: { enabled: true, path: '/var/log/lb.jsonl' },
      metricsEnabled: false,
      responseHeaders: false,
      shutdownTimeoutMs: 10000,
      apiKeys: ['client-key-one', 'client-key-two'],
      adminKey: 'admin-key-secret',
      redisUrl: 'redis://:redis-pass-word@10.0.0.5:6379/2',
    });
  });

  it('LB_REDIS_URL must be a redis:// or rediss:// URL, and the error never shows it', () => {
    for (const bad of ['http://:hunter2-secret@cache:6379', 'hunter2-secret']) {
      let err: any;
      try {
        createConfigFromEnv({ OPENAI_API_KEY: A, LB_REDIS_URL: bad });
      } catch (e) {
        err = e;
      }
      expect(err?.name).toBe('ConfigValidationError');
      expect(err.message).toContain('redis:// or rediss://');
      expect(err.message).not.toContain('hunter2');
      expect(JSON.stringify(err.errors)).not.toContain('hunter2');
    }
    expect(
      createConfigFromEnv({ OPENAI_API_KEY: A, LB_REDIS_URL: 'rediss://cache:6380' }).server.redisUrl,
    ).toBe('rediss://cache:6380');
  });

  it('has documented defaults, and returns a frozen config', () => {
    const c = createConfigFromEnv({ OPENAI_API_KEY: A });
    expect(c.breaker).toEqual({ enabled: true, threshold: 5, halfOpenAfterMs: 60000, policy: 'consecutive' });
    expect(c.healthCheck).toEqual({ enabled: false, intervalMs: 30000, timeoutMs: 5000 });
    expect(c.server).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      metricsEnabled: true,
      responseHeaders: true,
      apiKeys: [],
    });
    expect(c.router.strategy).toBe('priority');
    expect(Object.isFrozen(c.router.endpoints[0])).toBe(true);
    expect(createOpenAIConfigFromEnv).toBe(createConfigFromEnv);
  });

  it('ignores empty variables and warns about likely typos', () => {
    const c = configFromEnv({
      OPENAI_API_KEY: A,
      OPENAI_MODEL: '',
      PORT: '  ',
      OPENAI_PRIORTY_2: '3',
      OPENAI_ORG_ID: 'org',
    });
    expect(c.defaultModel).toBeUndefined();
    expect(c.server.port).toBe(8080);
    expect(lines(c.warnings)).toEqual([
      'OPENAI_PRIORTY_2: unknown variable (ignored); did you mean OPENAI_PRIORITY_2?',
    ]);
  });

  it('warns when a duration in ms looks like seconds', () => {
    const c = configFromEnv({ OPENAI_API_KEY: A, TIMEOUT: '30' });
    expect(lines(c.warnings)[0]).toMatch(/^TIMEOUT: 30 ms is very short/);
  });
});

describe('invalid environments', () => {
  it('reports every problem at once, naming each variable', () => {
    const e = errorOf(() =>
      configFromEnv({
        OPENAI_API_KEY_1: A,
        OPENAI_BASE_URL_1: 'htp:/x',
        OPENAI_PRIORITY_1: '11',
        OPENAI_MAX_RPS_1: '-1',
        OPENAI_WEIGHT_1: 'heavy',
        OPENAI_ENABLED_1: 'maybe',
        OPENAI_PRIORITY_3: '2',
        OPENAI_BASE_URL_4: 'https://d.example/v1',
        LB_STRATEGY: 'roundrobin',
        PORT: '99999',
        OPENAI_KEY_ROTATION_ENABLED: 'sometimes',
        STREAM_PROBATION_HOLD: '-5',
        STREAM_PROBATION_MAX_BYTES: '64MB',
      }),
    );
    expect(e.errors).toHaveLength(12);
    expect(lines(e.errors)).toEqual(
      expect.arrayContaining([
        'OPENAI_BASE_URL_1: not a URL: "htp:/x"',
        'OPENAI_PRIORITY_1: expected an integer from 1 to 10, received 11',
        'OPENAI_MAX_RPS_1: expected a number >= 0 (0 = no limit), received -1',
        'OPENAI_WEIGHT_1: expected a number >= 0, received "heavy"',
        'OPENAI_ENABLED_1: expected true or false, received "maybe"',
        'OPENAI_PRIORITY_3: set, but endpoint 3 has neither OPENAI_API_KEY_3 nor OPENAI_BASE_URL_3',
        'OPENAI_API_KEY_4: missing: endpoint 4 has OPENAI_BASE_URL_4 but no key',
        expect.stringMatching(
          /^LB_STRATEGY: unknown strategy "roundrobin" \(did you mean "round-robin"\?\); known: priority, /,
        ),
        'PORT: expected an integer from 0 to 65535, received 99999',
        'OPENAI_KEY_ROTATION_ENABLED: expected true or false, received "sometimes"',
        'STREAM_PROBATION_HOLD: expected a duration in ms (or text like "30s"), received "-5"',
        'STREAM_PROBATION_MAX_BYTES: expected a number of bytes > 0, received "64MB"',
      ]),
    );
    expect(e.message.split('\n')).toHaveLength(e.errors.length + 1);
    expect(e.message).toMatch(/^Invalid lb environment \(12 errors\):\n {2}/);
    expect(e.toOpenAIError().error.code).toBe('invalid_config');
    expect(e.message).not.toContain(A);
  });

  it('reports an empty environment with what to set', () => {
    const e = errorOf(() => configFromEnv({ PORT: '8080' }));
    expect(lines(e.errors)).toEqual([
      expect.stringMatching(/^endpoints: no endpoint configured: set OPENAI_API_KEY/),
    ]);
  });

  it('reports orphan fallback keys and upstream keys', () => {
    const e = errorOf(() =>
      configFromEnv({ OPENAI_API_KEY_FALLBACK_1: A, UPSTREAM_API_KEY: B, OPENAI_API_KEY_1: C }),
    );
    expect(lines(e.errors)).toEqual([
      'OPENAI_API_KEY_FALLBACK_1: set, but OPENAI_API_KEY is not',
      'UPSTREAM_API_KEY: set, but UPSTREAM_URL is not',
    ]);
  });

  it('never crashes on junk and never echoes keys', () => {
    const junk: Record<string, string> = {
      OPENAI_API_KEY_1: A,
      OPENAI_BASE_URL_1: `https://user:${B}@x.example/v1 bad`,
      OPENAI_MODELS_1: ',,,',
      OPENAI_TIMEOUT_1: '-5',
      OPENAI_API_KEY_99999999999999999999: C,
      CIRCUIT_BREAKER_TIMEOUT: '1e400',
      LB_API_KEYS: ',',
      '': 'x',
      'OPENAI_API_KEY_\u0000': 'x',
    };
    const e = errorOf(() => configFromEnv(junk));
    for (const s of [A, B, C]) expect(e.message).not.toContain(s);
    expect(e.errors.length).toBeGreaterThan(0);
    expect(e.errors.every((i) => typeof i.path === 'string' && i.path.length > 0)).toBe(true);
  });
});

describe('isConfigured', () => {
  it('is true when any endpoint scheme (or LB_CONFIG) is present', () => {
    expect(isConfigured({})).toBe(false);
    expect(isConfigured({ PORT: '80', OPENAI_MODEL: 'x', OPENAI_API_KEY: '' })).toBe(false);
    expect(isConfigured({ OPENAI_API_KEY: A })).toBe(true);
    expect(isConfigured({ OPENAI_API_KEY_7: A })).toBe(true);
    expect(isConfigured({ OPENAI_BASE_URL_2: 'https://x' })).toBe(true);
    expect(isConfigured({ UPSTREAM_URL: 'http://x' })).toBe(true);
    expect(isConfigured({ LB_CONFIG: 'lb.toml' })).toBe(true);
  });
});
