import { fakeKey } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import {
  type ConfigValidationError,
  configFromEnv,
  SERVER_DEFAULTS,
  serverSettingsFromEnv,
} from '../src/index.js';

// The server's settings from the environment alone: the same table and rules as configFromEnv, no endpoint needed.
describe('serverSettingsFromEnv', () => {
  it('reads the server variables without any endpoint, defaults from SERVER_DEFAULTS', () => {
    expect(serverSettingsFromEnv({})).toEqual(SERVER_DEFAULTS);
    const s = serverSettingsFromEnv({
      PORT: ' 9000 ',
      HOST: '0.0.0.0',
      LOG_LEVEL: 'warn',
      STREAM_IDLE_TIMEOUT: '30s',
    });
    expect(s).toMatchObject({ port: 9000, host: '0.0.0.0', logLevel: 'warn', streamIdleTimeoutMs: 30_000 });
  });

  it('reads them as configFromEnv does', () => {
    const env = { PORT: '9001', HTTP2: 'off', LB_OPS_PORT: '0' };
    expect(serverSettingsFromEnv(env)).toEqual(
      configFromEnv({ ...env, OPENAI_API_KEY: fakeKey('settings') }).server,
    );
  });

  it('refuses a bad value, naming the variable', () => {
    let err: ConfigValidationError | undefined;
    try {
      serverSettingsFromEnv({ PORT: 'eighty' });
    } catch (e) {
      err = e as ConfigValidationError;
    }
    expect(err?.errors.map((i) => i.path)).toEqual(['PORT']);
  });
});
