import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromEnv, configFromFile, SERVER_DEFAULTS } from '@lb/config-env';
import { fakeKey } from '@lb/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, DEFAULT_SETTINGS } from '../src/index.js';

// One declaration of the server's defaults (issue 22 part 6): a config from the environment, a config from a file and
// `createServer` with no server options end up with the same value for every setting.
const key = fakeKey('defaults');
const dir = mkdtempSync(join(tmpdir(), 'lb-defaults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the server defaults', () => {
  it('are the same from the environment, from a file and from createServer with no options', async () => {
    const fromEnv = configFromEnv({ OPENAI_API_KEY: key }).server;
    const file = join(dir, 'lb.toml');
    writeFileSync(
      file,
      `[[endpoints]]\nname = "a"\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "${key}"\n`,
    );
    const fromFile = configFromFile(file, {}).server;
    const server = createServer({ router: { endpoints: [{ url: 'http://127.0.0.1:9/v1', apiKey: key }] } });
    try {
      const fromServer = server.settings;
      const keys = new Set([
        ...Object.keys(fromEnv),
        ...Object.keys(fromFile),
        ...Object.keys(fromServer),
        ...Object.keys(DEFAULT_SETTINGS),
      ]);
      for (const k of keys) {
        const want = (DEFAULT_SETTINGS as unknown as Record<string, unknown>)[k];
        expect((fromEnv as unknown as Record<string, unknown>)[k], `env ${k}`).toEqual(want);
        expect((fromFile as unknown as Record<string, unknown>)[k], `file ${k}`).toEqual(want);
        expect((fromServer as unknown as Record<string, unknown>)[k], `createServer ${k}`).toEqual(want);
      }
      // The settings that had drifted apart, by name.
      expect(fromEnv.http2).toBe(true);
      expect(fromServer.http2).toBe(true);
      expect(fromEnv.connectionsPerOrigin).toBeNull();
      expect(fromServer.connectionsPerOrigin).toBeNull();
      expect(fromEnv.adminKey).toBeUndefined();
      expect(fromServer.redisUrl).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it('are one object: DEFAULT_SETTINGS is @lb/config-env’s SERVER_DEFAULTS', () => {
    expect(DEFAULT_SETTINGS).toBe(SERVER_DEFAULTS);
    expect(Object.isFrozen(DEFAULT_SETTINGS)).toBe(true);
  });
});
