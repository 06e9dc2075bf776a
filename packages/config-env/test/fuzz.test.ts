import { createRouter } from '@lb/core';
import { fuzzRuns, fuzzTimeout } from '@lb/testing';
import fc from 'fast-check';
import { stringify as toToml } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import {
  type ConfigFormat,
  configFromEnv,
  ENV_VARS,
  isConfigValidationError,
  type LbConfig,
  parseConfig,
} from '../src/index.js';

// Property tests (fast-check) of the config parsers: whatever they are given (environment, TOML/JSON/YAML text,
// valid or mangled), they return a config a router accepts, or throw a ConfigValidationError naming a path for each
// problem; never another error, and never a key in a message. `FUZZ_RUNS` sets the cases per property (a long run:
// scripts/fuzz.sh).

/** Keys no other generated value can equal: any one found in a message is a leak. */
const secret = fc.stringMatching(/^[0-9a-f]{24}$/).map((h) => `sk-fuzz-${h}`);

// Nothing a parser reads is printed behind the caller's back (a YAML warning quoted the source line on stderr).
const warned: string[] = [];
const onWarning = (w: Error) => warned.push(`${w.name}: ${w.message}`);
beforeAll(() => {
  process.on('warning', onWarning);
});
afterAll(async () => {
  await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
  process.off('warning', onWarning);
  expect(warned).toEqual([]);
});

/** Calls `parse` and checks the contract; returns the config, or undefined when it threw as it may. */
function judge(parse: () => LbConfig, secrets: readonly string[]): LbConfig | undefined {
  let cfg: LbConfig;
  try {
    cfg = parse();
  } catch (e) {
    if (!isConfigValidationError(e)) throw e;
    expect(e.errors.length).toBeGreaterThan(0);
    for (const issue of e.errors) {
      expect(typeof issue.path).toBe('string');
      expect(issue.path.length).toBeGreaterThan(0);
      expect(issue.message.length).toBeGreaterThan(0);
    }
    for (const s of secrets) expect(e.message).not.toContain(s);
    return undefined;
  }
  // A config the parser returns is one a router takes. With plugins listed, a strategy name no built-in knows passes
  // validation (a plugin may register it: lb-server checks it once they are loaded), and only that may fail here.
  expect(cfg.router.endpoints.length).toBeGreaterThan(0);
  if (cfg.plugins?.length) {
    try {
      createRouter(cfg.router);
    } catch (e) {
      expect((e as Error).message).toMatch(/unknown strategy/);
    }
  } else createRouter(cfg.router);
  return cfg;
}

// ------------------------------------------------------------------------------------------------- environment

const envName = fc.oneof(
  fc
    .constantFrom(...ENV_VARS)
    .chain((v) =>
      v.endsWith('_N')
        ? fc.integer({ min: 1, max: 4 }).map((n) => v.replace(/_N$/, `_${n}`))
        : fc.constant(v),
    ),
  fc.stringMatching(/^(OPENAI|LB|CIRCUIT_BREAKER|RATE_LIMIT|HEALTH_CHECK)_[A-Z_0-9]{1,20}$/),
);
const envValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer({ min: -5, max: 100_000 }).map(String),
  fc.constantFrom(
    'true',
    'false',
    '0',
    '1',
    '',
    ' ',
    '10s',
    '1m',
    '-1',
    'NaN',
    '1e9',
    'priority',
    'round-robin',
  ),
  fc.webUrl().map((u) => `${u}/v1`),
);

describe('configFromEnv (fuzz)', () => {
  it(
    'any environment: a config a router takes, or ConfigValidationErrors with paths; keys never echoed',
    () => {
      fc.assert(
        fc.property(
          fc.dictionary(envName, envValue, { maxKeys: 12 }),
          fc.array(secret, { minLength: 1, maxLength: 3 }),
          fc.array(fc.webUrl(), { minLength: 1, maxLength: 3 }),
          (env, keys, urls) => {
            // Some numbered endpoints with real keys (the secrets), over the noise.
            const e: Record<string, string> = { ...env };
            keys.forEach((k, i) => {
              e[`OPENAI_API_KEY_${i + 1}`] = k;
              if (urls[i]) e[`OPENAI_BASE_URL_${i + 1}`] = `${urls[i]}/v1`;
            });
            judge(() => configFromEnv(e), keys);
          },
        ),
        { numRuns: fuzzRuns(250) },
      );
    },
    fuzzTimeout(),
  );

  it('a strategy name only a plugin could register passes with plugins listed (a case the fuzzer found)', () => {
    const key = 'sk-fuzz-aaa00000aa000a0a00aa0aaa';
    const env = {
      LB_PLUGINS: '0',
      LB_STRATEGY: 'true',
      OPENAI_API_KEY_1: key,
      OPENAI_BASE_URL_1: 'http://a.aa/v1',
    };
    const cfg = judge(() => configFromEnv(env), [key]);
    expect(cfg?.plugins).toEqual(['0']);
    expect(cfg?.router.strategy).toBe('true');
    // Without plugins, the same name is refused at validation, with its path.
    expect(judge(() => configFromEnv({ ...env, LB_PLUGINS: '' }), [key])).toBeUndefined();
  });
});

// ------------------------------------------------------------------------------------------------- files

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
const modelName = fc.constantFrom('gpt-4o', 'gpt-4o-mini', 'text-embedding-3-small', 'o3');
const endpoint = fc.record(
  {
    base_url: fc.webUrl({ validSchemes: ['http', 'https'] }).map((u) => `${u}/v1`),
    api_key: secret,
    weight: fc.integer({ min: 1, max: 10 }),
    priority: fc.integer({ min: 1, max: 5 }),
    models: fc.uniqueArray(modelName, { minLength: 1, maxLength: 3 }),
  },
  { requiredKeys: ['base_url', 'api_key'] },
);
/** A valid config document: endpoints with distinct names, and a few top-level settings. */
const doc = fc
  .record(
    {
      endpoints: fc.uniqueArray(fc.tuple(name, endpoint), {
        minLength: 1,
        maxLength: 4,
        selector: ([n]) => n,
      }),
      strategy: fc.constantFrom('priority', 'round-robin', 'weighted-random', 'least-busy'),
      max_retries: fc.integer({ min: 0, max: 5 }),
      timeout: fc.constantFrom('20s', '1m', 1500),
    },
    { requiredKeys: ['endpoints'] },
  )
  .map(({ endpoints, ...rest }) => ({ ...rest, endpoints: endpoints.map(([n, e]) => ({ name: n, ...e })) }));
type Doc = { endpoints: { api_key: string }[] };

const FORMATS: Record<ConfigFormat, (d: object) => string> = {
  json: (d) => JSON.stringify(d, null, 2),
  yaml: (d) => toYaml(d),
  toml: (d) => toToml(d),
};

/** Text with a few random edits: characters deleted, inserted or replaced, the end cut off. */
const mangled = (text: string) =>
  fc
    .array(
      fc.tuple(
        fc.constantFrom('del', 'ins', 'rep', 'cut'),
        fc.nat(),
        fc.string({ minLength: 1, maxLength: 3 }),
      ),
      { minLength: 1, maxLength: 4 },
    )
    .map((edits) => {
      let t = text;
      for (const [op, at, s] of edits) {
        const i = t.length ? at % t.length : 0;
        if (op === 'del') t = t.slice(0, i) + t.slice(i + 1 + (at % 3));
        else if (op === 'ins') t = t.slice(0, i) + s + t.slice(i);
        else if (op === 'rep') t = t.slice(0, i) + s + t.slice(i + s.length);
        else t = t.slice(0, i);
      }
      return t;
    });

describe('parseConfig (fuzz)', () => {
  it(
    'a valid document reads the same from JSON, YAML and TOML, and a router takes it',
    () => {
      fc.assert(
        fc.property(doc, (d) => {
          const keys = (d as Doc).endpoints.map((e) => e.api_key);
          const [json, yaml, toml] = (['json', 'yaml', 'toml'] as const).map((f) =>
            judge(() => parseConfig(FORMATS[f](d), f, {}), keys),
          );
          expect(json).toBeDefined();
          const strip = (c: LbConfig | undefined) => ({ ...c, source: undefined });
          expect(strip(yaml)).toEqual(strip(json));
          expect(strip(toml)).toEqual(strip(json));
        }),
        { numRuns: fuzzRuns(150) },
      );
    },
    fuzzTimeout(),
  );

  for (const format of ['json', 'yaml', 'toml'] as const) {
    it(
      `${format}: a mangled document gives a config or ConfigValidationErrors with paths; a syntax error never quotes a key`,
      () => {
        fc.assert(
          fc.property(
            doc.chain((d) => fc.tuple(fc.constant(d as Doc), mangled(FORMATS[format](d)))),
            ([d, text]) => {
              const keys = d.endpoints.map((e) => e.api_key);
              // A key whose name was mangled is no longer a key to the parser (it may quote it as an unknown value):
              // only a syntax error must never quote one.
              judge(() => parseConfig(text, format, {}), []);
              try {
                parseConfig(text, format, {});
              } catch (e) {
                if (isConfigValidationError(e) && /syntax error/.test(e.message))
                  for (const k of keys) expect(e.message).not.toContain(k);
              }
            },
          ),
          { numRuns: fuzzRuns(format === 'yaml' ? 100 : 300) },
        );
      },
      fuzzTimeout(),
    );

    it(
      `${format}: any text gives a config or ConfigValidationErrors, never another error`,
      () => {
        fc.assert(
          fc.property(
            fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 })),
            (t) => {
              judge(() => parseConfig(t, format, {}), []);
            },
          ),
          { numRuns: fuzzRuns(300) },
        );
      },
      fuzzTimeout(),
    );
  }
});
