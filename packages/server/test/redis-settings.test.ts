import { ConfigError } from '@lb/core';
import { fakeKey } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import { createServer, DEFAULT_SETTINGS } from '../src/index.js';

// server.redisCommandTimeoutMs (LB_REDIS_COMMAND_TIMEOUT) and server.replicas (LB_REPLICAS): the same defaults as
// @lb/config-env's, and a ConfigError naming the received value.
const router = { endpoints: [{ url: 'http://127.0.0.1:9/v1', apiKey: fakeKey('settings') }] };

describe('the shared store settings', () => {
  it('default to a 100 ms command timeout and a replica count by heartbeats', async () => {
    expect(DEFAULT_SETTINGS.redisCommandTimeoutMs).toBe(100);
    expect(DEFAULT_SETTINGS.replicas).toBeUndefined();
    const s = createServer({
      router,
      server: { redisCommandTimeoutMs: 40, replicas: 3, logLevel: 'silent' },
    });
    expect(s.settings).toMatchObject({ redisCommandTimeoutMs: 40, replicas: 3 });
    await s.close();
  });

  it('refuse what is not a positive timeout or an integer count >= 1', () => {
    for (const [server, text] of [
      [{ redisCommandTimeoutMs: 0 }, 'server.redisCommandTimeoutMs: expected a number > 0, received 0'],
      [{ replicas: 0 }, 'server.replicas: expected an integer >= 1'],
      [{ replicas: 1.5 }, 'received 1.5'],
    ] as const) {
      let err: unknown;
      try {
        createServer({ router, server });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(server)).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(text);
    }
  });
});
