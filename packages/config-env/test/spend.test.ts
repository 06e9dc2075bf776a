// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` references are what these tests are about.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { fakeKey } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import { configFromFile, configJsonSchema, parseConfig } from '../src/index.js';
import { errorOf, lines } from './helpers.js';

const A = fakeKey('a');
const TEAM = fakeKey('team-a');

const ENDPOINTS = `
[[endpoints]]
name = "contract"
base_url = "https://contract.example/v1"
api_key = "\${KEY_A}"
price = { input = 0.05, output = 0.2, cached_input = 0.01 }

[[endpoints]]
name = "list"
base_url = "https://api.openai.com/v1"
api_key = "\${KEY_A}"
`;

describe('[[keys]] and [prices]', () => {
  it('reads keys, model prices and endpoint prices exactly as the issue writes them', () => {
    const sha = createHash('sha256').update('sk-other').digest('hex');
    const c = parseConfig(
      `${ENDPOINTS}
[[keys]]
name = "team-a"
key = "\${TEAM_A_KEY}"          # or key_sha256 = "…" so the file holds no secret
models = ["gpt-4o-mini", "fast"]
rpm = 60
budget_usd_day = 5
budget_usd_month = 100
tags = ["eu"]
expires = "2027-06-30"

[[keys]]
name = "batch"
key_sha256 = "${sha.toUpperCase()}"
rps = 2
tpm = 100000
budget_tokens_day = 2000000
expires = 2027-06-30

[prices."gpt-4o-mini"]
input = 0.15
output = 0.60

[prices."my-llama"]
input = "0"
`,
      'toml',
      { KEY_A: A, TEAM_A_KEY: TEAM },
    );
    expect(c.spend?.keys).toEqual([
      {
        name: 'team-a',
        key: TEAM,
        models: ['gpt-4o-mini', 'fast'],
        tags: ['eu'],
        rpm: 60,
        budgetUsdDay: 5,
        budgetUsdMonth: 100,
        expires: '2027-06-30',
      },
      { name: 'batch', keySha256: sha, rps: 2, tpm: 100000, budgetTokensDay: 2000000, expires: '2027-06-30' },
    ]);
    expect(c.spend?.prices).toEqual({
      'gpt-4o-mini': { input: 0.15, output: 0.6 },
      'my-llama': { input: 0 },
    });
    const contract = c.router.endpoints.find((e) => e.id === 'contract');
    expect(contract?.meta?.price).toEqual({ input: 0.05, output: 0.2, cachedInput: 0.01 });
    expect(c.router.endpoints.find((e) => e.id === 'list')?.meta).toBeUndefined();
    expect(Object.isFrozen(c.spend?.keys[0])).toBe(true);
  });

  it('the shipped example file carries a key, a price and an endpoint price', () => {
    const c = configFromFile(resolve(__dirname, '../examples/lb.example.toml'), { OPENAI_API_KEY: A });
    expect(c.spend?.keys.map((k) => k.name)).toEqual(['team-a']);
    expect(c.spend?.prices['gpt-4o-mini']).toEqual({ input: 0.15, cachedInput: 0.075, output: 0.6 });
    expect(c.router.endpoints.find((e) => e.id === 'local')?.meta?.price).toEqual({ input: 0, output: 0 });
    expect(c.warnings).toEqual([]);
  });

  it('has no spend section without [[keys]] or [prices]', () => {
    expect(parseConfig(ENDPOINTS, 'toml', { KEY_A: A }).spend).toBeUndefined();
  });

  it('reports every problem with its path, and never a key', () => {
    const e = errorOf(() =>
      parseConfig(
        `${ENDPOINTS}
[[keys]]
name = "team-a"
key = "\${TEAM_A_KEY}"
budget_usd_day = -1
rpm = "lots"
expires = "soon"
modles = ["x"]

[[keys]]
name = "team-a"
key = "\${TEAM_A_KEY}"
key_sha256 = "abc"

[[keys]]
name = "nokey"

[prices."gpt-4.1"]
input = "cheap"
ouput = 1

[[endpoints]]
name = "c"
base_url = "https://c.example/v1"
api_key = ""
price = { input = -2 }
`,
        'toml',
        { KEY_A: A, TEAM_A_KEY: TEAM },
      ),
    );
    expect(lines(e.errors)).toEqual([
      'endpoints[2].price.input: expected a number of USD >= 0, received -2',
      'keys[0].budget_usd_day: expected a number of USD >= 0, received -1',
      'keys[0].rpm: expected a number >= 0 (0 = no limit), received "lots"',
      'keys[0].expires: expected a date ("2027-06-30"), an ISO timestamp or epoch ms, received "soon"',
      'keys[0].modles: unknown key; did you mean "models"?',
      'keys[1].name: duplicate key name "team-a" (also keys[0])',
      'keys[1].key: the same key as keys[0]',
      'keys[1].key_sha256: expected 64 hex digits (the SHA-256 of the key)',
      'keys[1].key_sha256: set both key and key_sha256; keep one',
      'keys[2].key: missing: set key = "${ENV_VAR}" or key_sha256 = "<64 hex digits>"',
      'prices["gpt-4.1"].input: expected a number of USD >= 0, received "cheap"',
      'prices["gpt-4.1"].ouput: unknown key; did you mean "output"?',
    ]);
    expect(e.message).not.toContain(TEAM);
  });

  it('warns about a key that has already expired', () => {
    const c = parseConfig(
      `${ENDPOINTS}\n[[keys]]\nname = "old"\nkey = "sk-old-key-1234"\nexpires = "2020-01-31"\n`,
      'toml',
      {
        KEY_A: A,
      },
    );
    expect(lines(c.warnings)).toContain(
      'keys[0].expires: already expired: the key is refused (401 key_expired)',
    );
  });

  it('reads keys and prices from JSON too, and the JSON Schema knows them', () => {
    const c = parseConfig(
      JSON.stringify({
        endpoints: [
          { name: 'a', base_url: 'https://a.example/v1', api_key: A, price: { input: 1, output: 2 } },
        ],
        keys: [{ name: 'k', key: TEAM, models: 'gpt-4o-mini, fast', budget_usd_day: '2.5' }],
        prices: { 'gpt-4o': { input: 2.5, cached_input: 1.25, output: 10 } },
      }),
      'json',
      {},
    );
    expect(c.spend?.keys[0]).toEqual({
      name: 'k',
      key: TEAM,
      models: ['gpt-4o-mini', 'fast'],
      budgetUsdDay: 2.5,
    });
    expect(c.spend?.prices['gpt-4o']).toEqual({ input: 2.5, cachedInput: 1.25, output: 10 });
    const schema = JSON.stringify(configJsonSchema());
    expect(schema).toContain('budget_usd_month');
    expect(schema).toContain('cached_input');
  });
});
