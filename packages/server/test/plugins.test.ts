// Plugins loaded from config (`plugins = [...]`) and from the environment (LB_PLUGINS): the built lb-server CLI as a
// process, fake upstreams on 127.0.0.1, the official openai SDK.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRouter, strategyNames } from '@lb/core';
import { type FakeUpstream, fakeKey, type NodeProcess, startFakeUpstream, startNode } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPlugins } from '../src/plugins.js';
import { CLI } from './cli-helpers.js';

const KEY_A = fakeKey('plugins-a');
const KEY_B = fakeKey('plugins-b');
let dir: string;
let a: FakeUpstream;
let b: FakeUpstream;

const LAST = `// picks the last candidate: the built-in "priority" never would here
export default {
  strategies: { last: () => ({ name: 'last', pick: (c) => c[c.length - 1] }) },
  guards: [() => ({
    name: 'no-b-for-gpt-4o',
    admit: (endpoint, request) =>
      endpoint.id === 'b' && request.model === 'gpt-4o' ? { reason: 'b does not serve gpt-4o here' } : true,
  })],
};
`;
// A package by its bare name, ESM-only (an "exports" map with "import" alone), with a dialect that tags requests.
const TAGGED = `export const dialects = [{
  name: 'tagged',
  supports: () => true,
  prepare: (r) => ({
    url: r.endpoint.url.replace(/\\/$/, '') + r.path,
    method: r.method,
    headers: { ...r.headers, authorization: 'Bearer ' + r.endpoint.apiKey, 'x-plugin-dialect': 'tagged' },
    body: r.body,
  }),
}];
`;

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

const toml = (extra: string) => `${extra}
[[endpoints]]
name = "a"
base_url = "${a.url}"
api_key = "${KEY_A}"
priority = 1

[[endpoints]]
name = "b"
base_url = "${b.url}"
api_key = "${KEY_B}"
priority = 2
provider = "tagged"
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lb-plugins-'));
  a = await startFakeUpstream({ name: 'a', acceptKeys: [KEY_A] });
  b = await startFakeUpstream({ name: 'b', acceptKeys: [KEY_B] });
  mkdirSync(join(dir, 'strategies'));
  writeFileSync(join(dir, 'strategies/last.mjs'), LAST);
  const pkg = join(dir, 'node_modules/my-lb-dialect');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ name: 'my-lb-dialect', type: 'module', exports: { '.': { import: './index.js' } } }),
  );
  writeFileSync(join(pkg, 'index.js'), TAGGED);
  writeFileSync(
    join(dir, 'lb.toml'),
    toml('plugins = ["./strategies/last.mjs", "my-lb-dialect"]\nstrategy = "last"'),
  );
  writeFileSync(join(dir, 'nostrategy.toml'), toml('plugins = ["my-lb-dialect"]\nstrategy = "last"'));
  writeFileSync(
    join(dir, 'missing.toml'),
    toml('plugins = ["./strategies/nope.mjs", "not-installed-lb-plugin"]'),
  );
  writeFileSync(
    join(dir, 'bad.mjs'),
    `export default {
  strategies: { nopick: () => ({ name: 'nopick' }), stranger: () => ({ name: 'stranger', pick: (c) => (c.length ? { ...c[0] } : undefined) }) },
  dialects: [{ name: 'noprepare', supports: () => true }],
  guards: [{ name: 'async', admit: async () => true }],
};
`,
  );
  writeFileSync(join(dir, 'empty.mjs'), 'export const nothing = 1;\n');
  writeFileSync(join(dir, 'bad.toml'), toml('plugins = ["./bad.mjs", "./empty.mjs"]'));
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('lb-server loads plugins from its config file', () => {
  let lb: NodeProcess;
  let client: OpenAI;
  beforeAll(async () => {
    lb = await startNode(
      dir,
      [CLI, '--config', 'lb.toml'],
      { PORT: '0', LOG_LEVEL: 'error' },
      /listening on (http:\/\/\S+)[\s\S]*endpoint\(s\)/,
    );
    client = new OpenAI({ baseURL: `${lb.match[1]}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    expect(await lb?.stop()).toBe(0);
  });

  it('selects the plugin strategy by name, and says which plugins it loaded', async () => {
    expect(lb.out()).toContain('plugins: ./strategies/last.mjs (strategies last; guards no-b-for-gpt-4o)');
    expect(lb.out()).toContain('my-lb-dialect (dialects tagged)');
    expect(lb.out()).toContain('strategy last');
    for (let i = 0; i < 4; i++) {
      const { data, response } = await client.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
        .withResponse();
      expect(response.headers.get('x-lb-endpoint')).toBe('b');
      expect(data.choices[0].message.content).toBe('Hello from b');
    }
  });

  it("a bare package name resolves from the working directory: the plugin's dialect prepares b's requests", () => {
    expect(b.requests.at(-1)?.headers['x-plugin-dialect']).toBe('tagged');
    expect(b.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_B}`);
  });

  it("the plugin's guard is attached: it keeps gpt-4o off b, so a serves it", async () => {
    const { response } = await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(response.headers.get('x-lb-endpoint')).toBe('a');
  });
});

describe('LB_PLUGINS', () => {
  it('loads plugins named in the environment (comma list), for an env-configured server', async () => {
    const lb = await startNode(
      dir,
      [CLI],
      {
        PORT: '0',
        LOG_LEVEL: 'error',
        OPENAI_API_KEY_1: KEY_A,
        OPENAI_BASE_URL_1: a.url,
        OPENAI_NAME_1: 'a',
        OPENAI_API_KEY_2: KEY_B,
        OPENAI_BASE_URL_2: b.url,
        OPENAI_NAME_2: 'b',
        OPENAI_PRIORITY_2: '2',
        LB_PLUGINS: './strategies/last.mjs, my-lb-dialect',
        LB_STRATEGY: 'last',
      },
      /listening on (http:\/\/\S+)[\s\S]*endpoint\(s\)/,
    );
    try {
      const client = new OpenAI({ baseURL: `${lb.match[1]}/v1`, apiKey: 'unused', maxRetries: 0 });
      const { response } = await client.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
        .withResponse();
      expect(response.headers.get('x-lb-endpoint')).toBe('b');
    } finally {
      expect(await lb.stop()).toBe(0);
    }
  });
});

describe('a reload', () => {
  it('loads the plugins newly listed and attaches their guards; a failing one fails the reload, config unchanged', async () => {
    const ADMIN = fakeKey('plugins-admin');
    writeFileSync(join(dir, 'reload.toml'), toml('plugins = ["my-lb-dialect"]'));
    const lb = await startNode(
      dir,
      [CLI, '--config', 'reload.toml'],
      { PORT: '0', LOG_LEVEL: 'error', LB_ADMIN_KEY: ADMIN },
      /listening on (http:\/\/\S+)[\s\S]*endpoint\(s\)/,
    );
    const url = lb.match[1];
    const reload = () =>
      fetch(`${url}/admin/reload`, {
        method: 'POST',
        headers: { 'x-admin-key': ADMIN, 'content-type': 'application/json' },
        body: '{}',
      });
    const endpointFor = async (model: string) => {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const { response } = await client.chat.completions
        .create({ model, messages: [{ role: 'user', content: 'hi' }] })
        .withResponse();
      return response.headers.get('x-lb-endpoint');
    };
    try {
      expect(await endpointFor('gpt-4o-mini')).toBe('a');
      writeFileSync(
        join(dir, 'reload.toml'),
        toml('plugins = ["my-lb-dialect", "./bad.mjs"]\nstrategy = "last"'),
      );
      const refused = await reload();
      expect(refused.status).toBe(400);
      expect(await refused.text()).toContain('./bad.mjs');
      expect(await endpointFor('gpt-4o-mini')).toBe('a');
      writeFileSync(
        join(dir, 'reload.toml'),
        toml('plugins = ["my-lb-dialect", "./strategies/last.mjs"]\nstrategy = "last"'),
      );
      expect((await reload()).status).toBe(200);
      expect(await endpointFor('gpt-4o-mini')).toBe('b');
      expect(await endpointFor('gpt-4o')).toBe('a'); // the new plugin's guard
    } finally {
      expect(await lb.stop()).toBe(0);
    }
  });
});

describe('plugins that cannot load: a ConfigError naming the module, exit 1', () => {
  it('a missing module (a path and a package name)', async () => {
    const r = await run(['--config', 'missing.toml'], {});
    expect(r.code).toBe(1);
    expect(r.out).toContain('plugins[0]: "./strategies/nope.mjs": cannot find module: no file');
    expect(r.out).toContain(
      'plugins[1]: "not-installed-lb-plugin": cannot find module: not installed where Node',
    );
    expect(r.out).not.toContain(KEY_A);
  });

  it('a plugin that breaks the contract: each problem, with its module, checked structurally and by a sample', async () => {
    const r = await run(['--config', 'bad.toml'], {});
    expect(r.code).toBe(1);
    expect(r.out).toContain('plugins[0]: "./bad.mjs": strategy "nopick": the strategy has no pick function');
    expect(r.out).toContain(
      'plugins[0]: "./bad.mjs": strategy "stranger": pick over one candidate did not return it',
    );
    expect(r.out).toContain(
      'plugins[0]: "./bad.mjs": guards[0]: guard "async": admit must answer synchronously',
    );
    expect(r.out).toContain(
      'plugins[0]: "./bad.mjs": dialects[0] (noprepare): the dialect has no prepare function',
    );
    expect(r.out).toContain('plugins[1]: "./empty.mjs": not an lb plugin');
  });

  it('LB_PLUGINS with a missing module', async () => {
    const r = await run([], { UPSTREAM_URL: a.url, LB_PLUGINS: './gone.mjs' });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/plugins\[0\]: "\.\/gone\.mjs": cannot find module/);
  });

  it('a strategy no loaded plugin registers', async () => {
    const r = await run(['--config', 'nostrategy.toml'], {});
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      'strategy: unknown strategy "last": no plugin registered it (plugins loaded: my-lb-dialect → no strategy)',
    );
  });

  it('lb-server check loads and checks them too', async () => {
    const r = await run(['check', '--config', 'bad.toml'], {});
    expect(r.code).toBe(1);
    expect(r.out).toContain('"./bad.mjs": strategy "nopick"');
  });
});

describe('loadPlugins, in process (as a library uses it)', () => {
  const errorsOf = async (specs: string[]) => {
    try {
      await loadPlugins(specs, { cwd: dir });
    } catch (e) {
      expect((e as Error).name).toBe('ConfigError');
      return (e as { errors: { path: string; message: string }[] }).errors.map(
        (i) => `${i.path}: ${i.message}`,
      );
    }
    throw new Error('expected a ConfigError');
  };

  it('loads CommonJS and file: URLs; attach adds the guards to a router and the disposer removes them', async () => {
    writeFileSync(
      join(dir, 'cjs-plugin.cjs'),
      "module.exports = { strategies: { 'cjs-first': () => ({ name: 'cjs-first', pick: (c) => c[0] }) }, guards: [{ name: 'cjs-guard', admit: () => true }] };\n",
    );
    const plugins = await loadPlugins(
      ['./cjs-plugin.cjs', pathToFileURL(join(dir, 'strategies/last.mjs')).href],
      {
        cwd: dir,
      },
    );
    expect(plugins.modules.map((m) => [m.strategies, m.guards])).toEqual([
      [['cjs-first'], ['cjs-guard']],
      [['last'], ['no-b-for-gpt-4o']],
    ]);
    const router = createRouter({
      endpoints: [{ id: 'x', url: 'http://127.0.0.1:9/v1' }],
      strategy: 'cjs-first',
    });
    const before = router.guards.length;
    const off = plugins.attach(router);
    expect(router.guards.map((g) => g.name)).toEqual(
      expect.arrayContaining(['cjs-guard', 'no-b-for-gpt-4o']),
    );
    off();
    expect(router.guards.length).toBe(before);
  });

  it('refuses built-in names, a name two plugins register, and a pick that throws; registers nothing then', async () => {
    writeFileSync(
      join(dir, 'builtin.mjs'),
      "export const strategies = { priority: () => ({ name: 'p', pick: (c) => c[0] }) };\nexport const dialects = [{ name: 'openai', supports: () => true, prepare: () => ({}) }];\n",
    );
    writeFileSync(
      join(dir, 'throws.mjs'),
      "export default { strategies: { boom: () => ({ name: 'boom', pick: () => { throw new Error('no luck'); } }), last: () => ({ name: 'last', pick: (c) => c[0] }) } };\n",
    );
    const errors = await errorsOf(['./builtin.mjs', './strategies/last.mjs', './throws.mjs']);
    expect(errors).toEqual([
      'plugins[0]: "./builtin.mjs": strategy "priority": is a built-in strategy name: pick another',
      'plugins[0]: "./builtin.mjs": dialects[0] (openai): "openai" is a built-in dialect name: pick another',
      'plugins[2]: "./throws.mjs": strategy "boom": pick threw on sample candidates: no luck',
      'plugins[2]: "./throws.mjs": strategy "last" is also registered by "./strategies/last.mjs"',
    ]);
    expect(strategyNames()).not.toContain('boom');
  });
});
