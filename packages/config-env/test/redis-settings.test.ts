import { fakeKey } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import { type ConfigValidationError, configFromEnv, SERVER_DEFAULTS } from '../src/index.js';

// The shared store's settings: LB_REDIS_COMMAND_TIMEOUT (ms or a duration) and LB_REPLICAS (counted when unset).
const key = fakeKey('redis-settings');

describe('LB_REDIS_COMMAND_TIMEOUT and LB_REPLICAS', () => {
  it('default to 100 ms and a count by heartbeats', () => {
    const c = configFromEnv({ OPENAI_API_KEY: key });
    expect(c.server.redisCommandTimeoutMs).toBe(100);
    expect(SERVER_DEFAULTS.redisCommandTimeoutMs).toBe(100);
    expect(c.server.replicas).toBeUndefined();
  });

  it('read ms, a duration, and an integer', () => {
    expect(
      configFromEnv({ OPENAI_API_KEY: key, LB_REDIS_COMMAND_TIMEOUT: '250' }).server.redisCommandTimeoutMs,
    ).toBe(250);
    expect(
      configFromEnv({ OPENAI_API_KEY: key, LB_REDIS_COMMAND_TIMEOUT: '0.05s' }).server.redisCommandTimeoutMs,
    ).toBe(50);
    expect(configFromEnv({ OPENAI_API_KEY: key, LB_REPLICAS: '3' }).server.replicas).toBe(3);
  });

  it('refuse a timeout that is not > 0 and a replica count that is not an integer >= 1, naming the variable', () => {
    for (const env of [{ LB_REDIS_COMMAND_TIMEOUT: '0' }, { LB_REPLICAS: '0' }, { LB_REPLICAS: '2.5' }]) {
      let err: ConfigValidationError | undefined;
      try {
        configFromEnv({ OPENAI_API_KEY: key, ...env });
      } catch (e) {
        err = e as ConfigValidationError;
      }
      expect(err, JSON.stringify(env)).toBeDefined();
      expect(err!.message).toContain(Object.keys(env)[0]);
    }
  });
});
