import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  type Candidate,
  ConfigError,
  createRouter,
  Endpoint,
  type Guard,
  type PickContext,
  type Router,
  type RouterConfig,
  registerStrategy,
  type Strategy,
  type StrategyFactory,
  strategyNames,
} from '@lb/core';
import { type Dialect, dialectNames, registerDialect } from '@lb/providers';

/**
 * What a plugin module exports: its default export (or, without one, its named exports) is an object with any of
 * these three parts. A plugin never imports lb to register itself: lb-server checks each part and registers it.
 *
 * @example
 * // sticky.mjs
 * export default {
 *   strategies: { sticky: () => ({ name: 'sticky', pick: (c) => c[0] }) },
 * };
 */
export interface LbPlugin {
  /** Strategies by the name a config selects them with (`strategy = "sticky"`): a factory per name. */
  strategies?: Record<string, StrategyFactory>;
  /** Guards to attach to the router: a guard, or a function making one (called once per router). */
  guards?: ReadonlyArray<Guard | (() => Guard)>;
  /** Provider dialects, selected by an endpoint's `provider = "<dialect name>"`. */
  dialects?: readonly Dialect[];
}

/** One loaded plugin module. */
export interface LoadedPlugin {
  /** As listed (`my-lb-strategy`, `./strategies/sticky.mjs`). */
  readonly spec: string;
  /** The file it resolved to. */
  readonly path: string;
  readonly strategies: readonly string[];
  readonly guards: readonly string[];
  readonly dialects: readonly string[];
}

/** Plugins loaded and registered: their strategies and dialects are known; their guards wait for {@link attach}. */
export interface LoadedPlugins {
  readonly modules: readonly LoadedPlugin[];
  /** Attaches every plugin guard to `router` (a fresh one from each factory); returns the disposer. */
  attach(router: Router): () => void;
}

interface Checked {
  spec: string;
  path: string;
  strategies: [string, StrategyFactory][];
  guards: (Guard | (() => Guard))[];
  guardNames: string[];
  dialects: Dialect[];
}

const BUILTIN_STRATEGIES = new Set(strategyNames());
const BUILTIN_DIALECTS = new Set(dialectNames());

/**
 * Loads plugin modules, checks each against the contract, and registers their strategies and dialects — all or
 * nothing: a missing module or a part that breaks the contract throws a `ConfigError` (with `errors`, one per
 * problem, each naming the module) and registers nothing. Package names resolve from `cwd` as Node resolves them;
 * paths (`./x.mjs`, `../x.mjs`, absolute, `file:` URLs) resolve against `cwd`.
 *
 * @example
 * const plugins = await loadPlugins(['./strategies/sticky.mjs'], { cwd: process.cwd() });
 * const server = createServer({ router: { endpoints, strategy: 'sticky' } });
 * plugins.attach(server.router);
 */
export async function loadPlugins(
  specs: readonly string[] | undefined,
  opts: { cwd?: string } = {},
): Promise<LoadedPlugins> {
  const cwd = opts.cwd ?? process.cwd();
  const errors: { path: string; message: string }[] = [];
  const checked: Checked[] = [];
  const seen = new Map<string, string>();
  for (const [i, spec] of (specs ?? []).entries()) {
    const where = `plugins[${i}]`;
    const fail = (message: string) =>
      errors.push({ path: where, message: `${JSON.stringify(spec)}: ${message}` });
    let path: string;
    try {
      path = resolveSpec(spec, cwd);
    } catch (e) {
      fail((e as Error).message);
      continue;
    }
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
    } catch (e) {
      fail(`cannot load ${path}: ${firstLine(e)}`);
      continue;
    }
    const problems: string[] = [];
    const c = checkModule(spec, path, mod, problems);
    for (const [name] of c.strategies) {
      const by = seen.get(`s:${name}`);
      if (by) problems.push(`strategy ${JSON.stringify(name)} is also registered by ${JSON.stringify(by)}`);
      seen.set(`s:${name}`, spec);
    }
    for (const d of c.dialects) {
      const by = seen.get(`d:${d.name}`);
      if (by) problems.push(`dialect ${JSON.stringify(d.name)} is also registered by ${JSON.stringify(by)}`);
      seen.set(`d:${d.name}`, spec);
    }
    for (const p of problems) fail(p);
    if (!problems.length) checked.push(c);
  }
  if (errors.length) throw pluginError(errors);
  for (const c of checked) {
    for (const [name, factory] of c.strategies) registerStrategy(name, factory);
    for (const d of c.dialects) registerDialect(d);
  }
  return {
    modules: checked.map((c) => ({
      spec: c.spec,
      path: c.path,
      strategies: c.strategies.map(([n]) => n),
      guards: c.guardNames,
      dialects: c.dialects.map((d) => d.name),
    })),
    attach(router) {
      const offs = checked.flatMap((c) =>
        c.guards.map((g) => router.addGuard(typeof g === 'function' ? g() : g)),
      );
      return () => {
        for (const off of offs) off();
      };
    },
  };
}

/**
 * Checks that every strategy a router config names (top level and per model group) is registered, after the plugins
 * are loaded; throws a `ConfigError` naming the strategy and the plugins loaded otherwise.
 */
export function checkStrategies(router: RouterConfig, plugins?: LoadedPlugins): void {
  const known = strategyNames();
  const errors: { path: string; message: string }[] = [];
  const check = (path: string, s: unknown) => {
    if (typeof s !== 'string' || known.includes(s)) return;
    const from = plugins?.modules.length
      ? `no plugin registered it (plugins loaded: ${plugins.modules.map((m) => `${m.spec} → ${m.strategies.join(', ') || 'no strategy'}`).join('; ')})`
      : 'no plugin is loaded';
    errors.push({
      path,
      message: `unknown strategy ${JSON.stringify(s)}: ${from}; known: ${known.join(', ')}`,
    });
  };
  check('strategy', router.strategy);
  for (const [name, g] of Object.entries(router.models ?? {})) check(`models.${name}.strategy`, g.strategy);
  if (errors.length) throw pluginError(errors);
}

function pluginError(errors: { path: string; message: string }[]): ConfigError {
  const n = errors.length;
  return Object.assign(
    new ConfigError(
      `invalid plugins (${n} error${n === 1 ? '' : 's'}):\n${errors.map((e) => `  ${e.path}: ${e.message}`).join('\n')}`,
    ),
    { errors },
  );
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}

/** The file a plugin spec names, from `cwd`. Throws saying where it looked. */
export function resolveSpec(spec: string, cwd: string): string {
  if (typeof spec !== 'string' || spec.trim() === '') throw new Error('expected a module name or path');
  if (spec.startsWith('file:')) {
    const p = fileURLToPath(spec);
    if (!existsSync(p)) throw new Error(`cannot find module: no file ${p}`);
    return p;
  }
  if (isAbsolute(spec) || /^\.\.?([/\\]|$)/.test(spec)) {
    const p = resolve(cwd, spec);
    if (!existsSync(p)) throw new Error(`cannot find module: no file ${p} (paths are relative to ${cwd})`);
    return p;
  }
  const req = createRequire(join(cwd, '__lb_plugins__.js'));
  try {
    return req.resolve(spec);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // An ESM-only package ("exports" with an "import" condition only): read its exports map.
    if (code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') {
      const p = esmEntry(spec, cwd);
      if (p) return p;
    }
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED')
      throw new Error(`cannot find module: not installed where Node looks from ${cwd} (npm i ${spec}?)`);
    throw e;
  }
}

function esmEntry(spec: string, cwd: string): string | undefined {
  const [scopeOrName, maybeName, ...rest] = spec.split('/');
  const pkgName = scopeOrName.startsWith('@') ? `${scopeOrName}/${maybeName}` : scopeOrName;
  const subpath = `.${spec.slice(pkgName.length)}`;
  if (rest.length && !scopeOrName.startsWith('@')) return undefined;
  for (let dir = cwd; ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', pkgName);
    if (existsSync(join(pkgDir, 'package.json'))) {
      const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { exports?: unknown };
      const ex = pkg.exports;
      const entry =
        typeof ex === 'string' || Array.isArray(ex) || (ex && !Object.keys(ex).some((k) => k.startsWith('.')))
          ? subpath === '.'
            ? ex
            : undefined
          : (ex as Record<string, unknown> | undefined)?.[subpath];
      const target = pick(entry);
      return target ? join(pkgDir, target) : undefined;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

function pick(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (Array.isArray(entry)) return entry.map(pick).find(Boolean);
  if (entry && typeof entry === 'object') {
    const o = entry as Record<string, unknown>;
    for (const k of ['node', 'import', 'default']) if (k in o) return pick(o[k]);
  }
  return undefined;
}

// ------------------------------------------------------------------ the contract, checked at load

const isFn = (f: unknown): f is (...a: unknown[]) => unknown => typeof f === 'function';
const isObj = (o: unknown): o is Record<string, unknown> => typeof o === 'object' && o !== null;

function checkModule(spec: string, path: string, mod: Record<string, unknown>, problems: string[]): Checked {
  const out: Checked = { spec, path, strategies: [], guards: [], guardNames: [], dialects: [] };
  const plugin = (isObj(mod.default) ? mod.default : mod) as Record<string, unknown>;
  const { strategies, guards, dialects } = plugin;
  if (strategies === undefined && guards === undefined && dialects === undefined) {
    problems.push(
      'not an lb plugin: its default export (or the module) has none of strategies, guards, dialects (see docs/getting-started-plugin.md)',
    );
    return out;
  }
  if (strategies !== undefined) {
    if (!isObj(strategies) || Array.isArray(strategies))
      problems.push('strategies: expected an object of { name: factory }');
    else
      for (const [name, factory] of Object.entries(strategies)) {
        const p = checkStrategy(name, factory);
        if (p) problems.push(`strategy ${JSON.stringify(name)}: ${p}`);
        else out.strategies.push([name, factory as StrategyFactory]);
      }
  }
  if (guards !== undefined) {
    if (!Array.isArray(guards)) problems.push('guards: expected a list of guards (or functions making one)');
    else
      guards.forEach((g, i) => {
        const r = checkGuard(g);
        if (typeof r === 'string') problems.push(`guards[${i}]: ${r}`);
        else {
          out.guards.push(g as Guard | (() => Guard));
          out.guardNames.push(r.name);
        }
      });
  }
  if (dialects !== undefined) {
    if (!Array.isArray(dialects)) problems.push('dialects: expected a list of dialects');
    else
      dialects.forEach((d, i) => {
        const p = checkDialect(d);
        if (p)
          problems.push(
            `dialects[${i}]${isObj(d) && typeof d.name === 'string' ? ` (${d.name})` : ''}: ${p}`,
          );
        else out.dialects.push(d as Dialect);
      });
  }
  return out;
}

/** Candidates as a router hands them to a strategy, the statistics those of a fresh router's endpoints. */
function sampleCandidates(n: number): Candidate[] {
  const router = createRouter({
    endpoints: Array.from({ length: n }, (_, i) => ({
      id: `plugin-check-${i}`,
      url: `http://127.0.0.1:9/v${i}`,
    })),
  });
  const snap = router.snapshot().endpoints;
  const out = router.endpoints.map((endpoint, i) => ({
    endpoint,
    index: i,
    weight: 1,
    priority: 1,
    upstreamModel: undefined,
    stats: snap[i].stats,
  }));
  return out;
}

/** Structure, then a sample: no candidates → nothing; one → it; three → one of them. */
function checkStrategy(name: string, factory: unknown): string | undefined {
  if (BUILTIN_STRATEGIES.has(name)) return 'is a built-in strategy name: pick another';
  if (!isFn(factory)) return 'expected a factory function (options) => ({ name, pick })';
  let s: Strategy;
  try {
    s = factory({ random: Math.random }) as Strategy;
  } catch (e) {
    return `the factory threw: ${firstLine(e)}`;
  }
  if (!isObj(s)) return `the factory returned ${s === null ? 'null' : typeof s}, not a strategy`;
  if (!isFn(s.pick)) return 'the strategy has no pick function';
  if (typeof s.name !== 'string' || !s.name) return 'the strategy has no name';
  const ctx: PickContext = { model: undefined, requestId: 'plugin-check', attempt: 1 };
  try {
    const none = s.pick([], ctx);
    if (none !== undefined && none !== null)
      return 'pick([]) returned something: with no candidates it must return undefined';
    const one = sampleCandidates(1);
    if (s.pick(one, ctx) !== one[0]) return 'pick over one candidate did not return it';
    const three = sampleCandidates(3);
    for (let i = 0; i < 3; i++)
      if (!three.includes(s.pick(three, ctx) as Candidate))
        return 'pick over three sample candidates returned something that is not one of them';
  } catch (e) {
    return `pick threw on sample candidates: ${firstLine(e)}`;
  }
  return undefined;
}

/** Structure, then a sample: `admit` answers `true` or a veto with a reason, synchronously. */
function checkGuard(g: unknown): string | Guard {
  let guard: unknown = g;
  if (isFn(g)) {
    try {
      guard = g();
    } catch (e) {
      return `the guard factory threw: ${firstLine(e)}`;
    }
  }
  if (!isObj(guard)) return 'expected a guard object { name, admit } (or a function returning one)';
  if (typeof guard.name !== 'string' || !guard.name) return 'the guard has no name';
  if (!isFn(guard.admit)) return `guard ${JSON.stringify(guard.name)} has no admit function`;
  for (const k of ['acquire', 'describe', 'rescue'])
    if (guard[k] !== undefined && !isFn(guard[k]))
      return `guard ${JSON.stringify(guard.name)}: ${k} must be a function`;
  const [c] = sampleCandidates(1);
  let r: unknown;
  try {
    r = guard.admit(c.endpoint, { model: 'plugin-check', requestId: 'plugin-check' }, Date.now());
  } catch (e) {
    return `guard ${JSON.stringify(guard.name)}: admit threw on a sample endpoint: ${firstLine(e)}`;
  }
  if (isObj(r) && isFn(r.then))
    return `guard ${JSON.stringify(guard.name)}: admit must answer synchronously, not a promise`;
  if (r !== true && !(isObj(r) && typeof r.reason === 'string'))
    return `guard ${JSON.stringify(guard.name)}: admit must return true or a veto { reason }`;
  return guard as unknown as Guard;
}

/** Structure, then a sample: `supports` answers a boolean, `prepare` builds a request to an http(s) URL. */
function checkDialect(d: unknown): string | undefined {
  if (!isObj(d)) return 'expected a dialect object { name, supports, prepare }';
  if (typeof d.name !== 'string' || !d.name) return 'the dialect has no name';
  if (BUILTIN_DIALECTS.has(d.name))
    return `${JSON.stringify(d.name)} is a built-in dialect name: pick another`;
  if (!isFn(d.supports)) return 'the dialect has no supports function';
  if (!isFn(d.prepare)) return 'the dialect has no prepare function';
  for (const k of ['translateResponse', 'createStreamTranslator'])
    if (d[k] !== undefined && !isFn(d[k])) return `${k} must be a function`;
  const endpoint = new Endpoint({
    id: 'plugin-check',
    url: 'http://127.0.0.1:9/v1',
    apiKey: 'sk-plugin-check-000000000000',
    provider: d.name,
  });
  const json = { model: 'plugin-check', messages: [{ role: 'user', content: 'hi' }] };
  try {
    if (typeof d.supports('chat.completions') !== 'boolean') return 'supports must return true or false';
    if (!d.supports('chat.completions')) return undefined;
    const up = d.prepare({
      endpoint,
      operation: 'chat.completions',
      method: 'POST',
      path: '/chat/completions',
      headers: { 'content-type': 'application/json' },
      body: new TextEncoder().encode(JSON.stringify(json)),
      json,
      upstreamModel: 'plugin-check',
      stream: false,
      model: 'plugin-check',
    }) as Record<string, unknown>;
    if (!isObj(up) || typeof up.url !== 'string' || !/^https?:\/\//.test(up.url))
      return 'prepare of a sample chat request did not return { url: "http(s)://…", method, headers, body }';
    if (typeof up.method !== 'string' || !isObj(up.headers))
      return 'prepare of a sample chat request returned no method or headers';
  } catch (e) {
    return `prepare threw on a sample chat request: ${firstLine(e)}`;
  }
  return undefined;
}
