// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` references are what these tests are about.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRouter } from '@lb/core';
import { fakeKey } from '@lb/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type ConfigIssue,
  type ConfigValidationError,
  configFromFile,
  configJsonSchema,
  isConfigValidationError,
  loadConfig,
  parseConfig,
  validateConfig,
  validateOpenAIConfig,
} from '../src/index.js';

const A = fakeKey('a');
const B = fakeKey('b');
const lines = (issues: readonly ConfigIssue[]) => issues.map((i) => `${i.path}: ${i.message}`);
function errorOf(fn: () => unknown): ConfigValidationError {
  try {
    fn();
  } catch (e) {
    if (isConfigValidationError(e)) return e;
    throw e;
  }
  throw new Error('expected a ConfigValidationError');
}
const dir = mkdtempSync(join(tmpdir(), 'lb-config-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOML = `
default_model = "gpt-4o"
strategy = "weighted_random"
max_retries = "2"
timeout = "20s"

[breaker]
threshold = 3
half_open_after = "1m"
policy = "sampling"

[server]
port = 9090
api_keys = ["client-key-aaaa"]

[[endpoints]]
name = "a"
base_url = "https://a.example/v1"
api_key = "\${KEY_A}"
weight = 2
max_rps = 5
models = ["gpt-4o"]

[providers.b]
base_url = "https://b.example/v1"
api_key = "\${KEY_B:-fallback-key-b}"
priority = 2
timeout_seconds = 30

[models."gpt-4o"]
strategy = "round_robin"
providers = [ { provider = "a", weight = 3 }, { provider = "b", model = "gpt-4o-2024-08-06" } ]
`;

describe('config files', () => {
  it('parses TOML: globals, endpoints, Berry-style providers tables and model groups, ${VAR} resolved', () => {
    const c = parseConfig(TOML, 'toml', { KEY_A: A });
    expect(c.source).toEqual({ kind: 'file', schemes: ['toml'] });
    expect(c.defaultModel).toBe('gpt-4o');
    expect(c.router).toMatchObject({ strategy: 'weighted-random', maxRetries: 2, timeoutMs: 20000 });
    expect(c.router.endpoints).toEqual([
      expect.objectContaining({ id: 'a', apiKey: A, weight: 2, limits: { rps: 5 }, models: ['gpt-4o'] }),
      expect.objectContaining({ id: 'b', apiKey: 'fallback-key-b', priority: 2, timeoutMs: 30000 }),
    ]);
    expect(c.router.models).toEqual({
      'gpt-4o': {
        strategy: 'round-robin',
        backends: [
          { endpoint: 'a', weight: 3 },
          { endpoint: 'b', model: 'gpt-4o-2024-08-06' },
        ],
      },
    });
    expect(c.breaker).toEqual({ enabled: true, threshold: 3, halfOpenAfterMs: 60000, policy: 'sampling' });
    expect(c.server).toMatchObject({ port: 9090, apiKeys: ['client-key-aaaa'] });
    const router = createRouter(c.router);
    expect(router.pick({ model: 'gpt-4o' })?.endpoint.id).toMatch(/^[ab]$/);
  });

  it('parses the same config from JSON and YAML', () => {
    const doc = {
      $schema: './lb.schema.json',
      strategy: 'round-robin',
      endpoints: [{ name: 'a', base_url: 'https://a.example/v1', api_key: '${KEY_A}', tags: ['eu'] }],
    };
    const fromJson = parseConfig(JSON.stringify(doc), 'json', { KEY_A: A });
    const yaml = `strategy: round-robin\nendpoints:\n  - name: a\n    base_url: https://a.example/v1\n    api_key: \${KEY_A}\n    tags: [eu]\n`;
    const fromYaml = parseConfig(yaml, 'yaml', { KEY_A: A });
    expect(fromJson.router).toEqual(fromYaml.router);
    expect(fromYaml.router.endpoints[0]).toMatchObject({ id: 'a', apiKey: A, tags: ['eu'] });
  });

  it('reports a missing ${VAR} at its path, with $${ as an escape', () => {
    const e = errorOf(() =>
      parseConfig(
        '[[endpoints]]\nname = "a"\nbase_url = "https://a.example/v1"\napi_key = "${OPENAI_KEY_A}"\nheaders = { X = "$${literal}" }\n',
        'toml',
        {},
      ),
    );
    expect(lines(e.errors)).toEqual([
      'endpoints[0].api_key: environment variable OPENAI_KEY_A is not set (referenced as ${OPENAI_KEY_A})',
    ]);
    const ok = parseConfig(
      '[[endpoints]]\nname = "a"\nbase_url = "https://a.example/v1"\napi_key = "${K}"\nheaders = { X = "$${literal}" }\n',
      'toml',
      { K: A },
    );
    expect(ok.router.endpoints[0].headers).toEqual({ X: '${literal}' });
  });

  it('lets the environment fill what the file leaves out (the file wins), and env endpoints when it lists none', () => {
    const c = parseConfig(
      '[server]\nport = 7000\n[models.fast]\nbackends = [{ endpoint = "openai-1", model = "gpt-4o-mini" }]\n',
      'toml',
      {
        OPENAI_API_KEY_1: A,
        PORT: '9999',
        HOST: '0.0.0.0',
      },
    );
    expect(c.server).toMatchObject({ port: 7000, host: '0.0.0.0' });
    expect(c.router.endpoints.map((e) => e.id)).toEqual(['openai-1']);
    expect(c.source.schemes).toEqual(['toml', 'numbered']);
    expect(c.router.models?.fast.backends[0]).toEqual({ endpoint: 'openai-1', model: 'gpt-4o-mini' });
  });

  it('reports syntax errors with line and column, never the source line', () => {
    const e = errorOf(() => parseConfig(`[[endpoints]]\napi_key = "${A}" oops\n`, 'toml', {}));
    expect(lines(e.errors)).toEqual([
      expect.stringMatching(/^toml config: TOML syntax error at line 2, column \d+: /),
    ]);
    expect(e.message).not.toContain(A);
    const j = errorOf(() => parseConfig(`{"api_key": "${A}" oops}`, 'json', {}));
    expect(j.message).toMatch(/JSON syntax error at line 1, column \d+/);
    expect(j.message).not.toContain(A);
    const y = errorOf(() => parseConfig(`api_key: "${A}\n  x: [`, 'yaml', {}));
    expect(y.message).toMatch(/YAML syntax error at line \d+/);
    expect(y.message).not.toContain(A);
  });

  it('reads files by extension and reports unreadable or unknown ones', () => {
    const f = join(dir, 'lb.yaml');
    writeFileSync(f, `endpoints:\n  - name: a\n    base_url: https://a.example/v1\n    api_key: ${A}\n`);
    expect(configFromFile(f, {}).source).toEqual({ kind: 'file', path: f, schemes: ['yaml'] });
    expect(lines(errorOf(() => configFromFile(join(dir, 'nope.toml'), {})).errors)).toEqual([
      `${join(dir, 'nope.toml')}: cannot read the file: ENOENT`,
    ]);
    expect(errorOf(() => configFromFile(join(dir, 'lb.ini'), {})).errors[0].message).toMatch(
      /unknown config format ".ini"/,
    );
  });

  it('loads the shipped example file', () => {
    const c = configFromFile(resolve(__dirname, '../examples/lb.example.toml'), { OPENAI_API_KEY: A });
    expect(c.router.endpoints.map((e) => e.id)).toEqual([
      'openai-main',
      'openai-second-key',
      'proxy',
      'local',
    ]);
    expect(c.warnings).toEqual([]);
    expect(() => createRouter(c.router)).not.toThrow();
    expect(c.healthCheck).toEqual({ enabled: true, intervalMs: 30000, timeoutMs: 5000 });
  });
});

describe('loadConfig', () => {
  it('reads .env and .env.local under the real environment', () => {
    const d = mkdtempSync(join(dir, 'dot-'));
    writeFileSync(join(d, '.env'), `OPENAI_API_KEY=${A}\nPORT=1000\nOPENAI_MODEL="from-dotenv"\n`);
    writeFileSync(join(d, '.env.local'), 'PORT=2000\n');
    const c = loadConfig({ cwd: d, env: { OPENAI_MODEL: 'from-env' }, dotenv: true });
    expect(c.router.endpoints[0].apiKey).toBe(A);
    expect(c.server.port).toBe(2000);
    expect(c.defaultModel).toBe('from-env');
    expect(() => loadConfig({ cwd: d, env: {} })).toThrow(/no endpoint configured/);
  });

  it('follows LB_CONFIG, relative to cwd', () => {
    const d = mkdtempSync(join(dir, 'cfg-'));
    writeFileSync(
      join(d, 'lb.json'),
      JSON.stringify({ endpoints: [{ name: 'j', base_url: 'https://j.example/v1', api_key: '${K}' }] }),
    );
    const c = loadConfig({ cwd: d, env: { LB_CONFIG: 'lb.json', K: B } });
    expect(c.source.path).toBe(join(d, 'lb.json'));
    expect(c.router.endpoints[0]).toMatchObject({ id: 'j', apiKey: B });
  });
});

describe('validateConfig: every invalid input class has its message', () => {
  it('reports all problems at once, with paths and suggestions', () => {
    const r = validateConfig({
      strategy: 'fastest',
      port: 8080,
      endpoints: [
        { name: 'a', base_url: 'htp:/x', api_key: A, prioity: 3 },
        { name: 'a', base_url: 'https://b.example/v1' },
        {
          name: 'cheap',
          base_url: 'https://c.example/v1',
          api_key: B,
          priority: 11,
          max_rps: -1,
          weight: -2,
        },
        { name: 'd', base_url: 'ftp://d.example', api_key: '', timeout: '5 minutes', enabled: 'sometimes' },
      ],
      models: {
        'gpt-4.1': { strategy: 'nope', backends: [{ endpoint: 'cheep' }, {}] },
        empty: { backends: [] },
      },
      breaker: { treshold: 3 },
    });
    expect(r.valid).toBe(false);
    expect(lines(r.errors)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^strategy: unknown strategy "fastest"; known: priority, /),
        'port: unknown key; it belongs in [server]',
        'endpoints[0].base_url: not a URL: "htp:/x"',
        'endpoints[0].prioity: unknown key; did you mean "priority"?',
        'endpoints[1].name: duplicate name "a" (also used by endpoints[0])',
        'endpoints[1].api_key: missing: set the key (or "${ENV_VAR}"), or api_key = "" for an upstream that needs none',
        'endpoints[2].priority: expected an integer from 1 to 10, received 11',
        'endpoints[2].max_rps: expected a number >= 0 (0 = no limit), received -1',
        'endpoints[2].weight: expected a number >= 0, received -2',
        'endpoints[3].base_url: not an http(s) URL: "ftp://d.example"',
        'endpoints[3].timeout: expected a duration > 0 in ms (or text like "30s"), received "5 minutes"',
        'endpoints[3].enabled: expected true or false, received "sometimes"',
        expect.stringMatching(/^models\["gpt-4.1"\].strategy: unknown strategy "nope"/),
        'models["gpt-4.1"].backends[0].endpoint: unknown endpoint "cheep" (did you mean "cheap"?); known: a, cheap, d',
        'models["gpt-4.1"].backends[1].endpoint: missing: name the endpoint this backend uses',
        'models.empty.backends: missing: list at least one backend',
        'breaker.treshold: unknown key; did you mean "threshold"?',
      ]),
    );
    expect(r.errors).toHaveLength(17);
  });

  it('never echoes secrets, even in wrong-typed or duplicated values', () => {
    const r = validateConfig({
      endpoints: [
        {
          name: 'a',
          base_url: `https://user:${B}@a.example/v1 x`,
          api_key: A,
          headers: { Authorization: 42 },
        },
        { name: 'b', base_url: 'https://a.example/v1', api_key: A },
        { name: 'c', base_url: 'https://a.example/v1', api_key: A },
      ],
      server: { admin_key: 12345, api_keys: 'k1-secret-value,k2-secret-value' },
    });
    const text = JSON.stringify(r);
    for (const s of [A, B]) expect(text).not.toContain(s);
    expect(lines(r.errors)).toEqual(
      expect.arrayContaining([
        'endpoints[0].headers.Authorization: expected a string, received number',
        'server.admin_key: expected a string, received number',
      ]),
    );
    expect(lines(r.warnings)).toContain(
      `endpoints[2]: same base_url and key as endpoints[1] (key sk-proj...N0IA): they share one upstream quota`,
    );
  });

  it('accepts a RouterConfig or LbConfig object, and warns about risky but valid setups', () => {
    const r = validateConfig({
      endpoints: [
        { id: 'a', url: 'http://a.example/v1', apiKey: A, enabled: false, limits: { rps: 2 } },
        { id: 'b', url: 'https://b.example/v1', enabled: false },
      ],
      strategy: 'round-robin',
    });
    expect(r.valid).toBe(true);
    expect(lines(r.warnings)).toEqual([
      'endpoints: every endpoint is disabled: no request can be served',
      'endpoints[0].base_url: sends its key unencrypted over http:// to "a.example"',
    ]);
    const bad = validateOpenAIConfig({ router: { endpoints: [{ id: 'x', url: 'nope' }] } });
    expect(lines(bad.errors)).toEqual(['endpoints[0].base_url: not a URL: "nope"']);
    expect(validateConfig('junk').errors).toEqual([
      { path: '(root)', message: 'expected a table of settings, received "junk"' },
    ]);
    expect(validateConfig({}).errors[0].path).toBe('endpoints');
  });

  it('exports a JSON Schema of the file for editors', () => {
    const s = configJsonSchema() as { properties: Record<string, { items?: { required?: string[] } }> };
    expect(Object.keys(s.properties)).toEqual(
      expect.arrayContaining(['endpoints', 'models', 'server', 'breaker']),
    );
    expect(s.properties.endpoints.items?.required).toEqual(['name', 'base_url']);
  });
});
