import { fakeKey } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import { configFromEnv, configJsonSchema, ENV_VARS, parseConfig } from '../src/index.js';
import { errorOf, lines } from './helpers.js';

const K = fakeKey('plugins');
const ep = `[[endpoints]]\nname = "a"\nbase_url = "http://127.0.0.1:9/v1"\napi_key = "${K}"\n`;

describe('plugins (file key `plugins`, env LB_PLUGINS)', () => {
  it('a file lists plugin modules, kept as written', () => {
    const c = parseConfig(`plugins = ["my-lb-strategy", "./strategies/sticky.mjs"]\n${ep}`, 'toml', {});
    expect(c.plugins).toEqual(['my-lb-strategy', './strategies/sticky.mjs']);
  });

  it('LB_PLUGINS is a comma list; the file wins over it', () => {
    const env = { OPENAI_API_KEY: K, LB_PLUGINS: ' a-plugin , ./b.mjs ,' };
    expect(configFromEnv(env).plugins).toEqual(['a-plugin', './b.mjs']);
    expect(parseConfig(`plugins = ["./c.mjs"]\n${ep}`, 'toml', env).plugins).toEqual(['./c.mjs']);
    expect(parseConfig(ep, 'toml', env).plugins).toEqual(['a-plugin', './b.mjs']);
    expect(ENV_VARS).toContain('LB_PLUGINS');
  });

  it('no plugins: the key is absent', () => {
    expect(parseConfig(ep, 'toml', {}).plugins).toBeUndefined();
  });

  it('with plugins listed, a strategy name no built-in knows is kept for lb-server to check', () => {
    const c = parseConfig(
      `plugins = ["./s.mjs"]\nstrategy = "sticky"\n[models.chat]\nstrategy = "first-healthy"\nbackends = [{ endpoint = "a" }]\n${ep}`,
      'toml',
      {},
    );
    expect(c.router.strategy).toBe('sticky');
    expect(c.router.models?.chat.strategy).toBe('first-healthy');
  });

  it('without plugins, an unknown strategy is still an error; a known one is still normalised', () => {
    const e = errorOf(() => parseConfig(`strategy = "sticky"\n${ep}`, 'toml', {}));
    expect(lines(e.errors)[0]).toMatch(/^strategy: unknown strategy "sticky"/);
    expect(
      parseConfig(`plugins = ["./s.mjs"]\nstrategy = "round_robin"\n${ep}`, 'toml', {}).router.strategy,
    ).toBe('round-robin');
  });

  it('a malformed list names the key', () => {
    const e = errorOf(() => parseConfig(`plugins = [1]\n${ep}`, 'toml', {}));
    expect(lines(e.errors)[0]).toMatch(/^plugins\[0\]: expected a string/);
    expect(JSON.stringify(configJsonSchema())).toContain('"plugins"');
  });
});
