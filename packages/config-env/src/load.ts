import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, isAbsolute, resolve } from 'node:path';
import * as util from 'node:util';
import { parse as parseToml } from 'smol-toml';
import { envToDocument, isConfigured, read } from './env.js';
import { ConfigValidationError } from './errors.js';
import type { ConfigIssue } from './issues.js';
import type { Env, LbConfig, LoadConfigOptions, ServerConfig } from './types.js';
import { compile, mergeDocs, runPipeline, type ValidationResult } from './validate.js';

/** Config file formats. */
export type ConfigFormat = 'toml' | 'json' | 'yaml';

const NO_ENDPOINTS_ENV =
  'no endpoint configured: set OPENAI_API_KEY (plus OPENAI_API_KEY_FALLBACK_N), OPENAI_API_KEY_N/OPENAI_BASE_URL_N, or UPSTREAM_URL, or point LB_CONFIG at a config file';

/**
 * Builds a config from environment variables: the three endpoint schemes (numbered `OPENAI_API_KEY_N`, primary
 * `OPENAI_API_KEY` with `OPENAI_API_KEY_FALLBACK_N`, single `UPSTREAM_URL`), combinable, plus the global settings.
 * Throws a {@link ConfigValidationError} naming each offending variable.
 *
 * @example
 * const config = configFromEnv({ OPENAI_API_KEY_1: 'sk-…', OPENAI_API_KEY_2: 'sk-…', OPENAI_WEIGHT_2: '3' });
 * const router = createRouter(config.router);
 */
export function configFromEnv(env: Env = process.env): LbConfig {
  const e = envToDocument(env);
  return compile(
    e.doc,
    { kind: 'env', schemes: e.schemes },
    { origins: e.origins, errors: e.errors, warnings: e.warnings, noEndpointsMessage: NO_ENDPOINTS_ENV },
    'environment',
  );
}

/**
 * The server's settings from the environment alone (`HOST`, `PORT`, `LOG_LEVEL`, …: the `server` section
 * {@link configFromEnv} reads), for a server with no endpoints to read (lb-server's demo). Throws a
 * {@link ConfigValidationError} naming each offending variable.
 *
 * @example
 * serverSettingsFromEnv({ PORT: '9000' }).port; // 9000
 */
export function serverSettingsFromEnv(env: Env = process.env): ServerConfig {
  const e = envToDocument(env, { endpoints: false });
  return compile(
    e.doc,
    { kind: 'env', schemes: [] },
    { origins: e.origins, errors: e.errors, warnings: e.warnings, requireEndpoints: false },
    'environment',
  ).server;
}

/**
 * Parses config text. `${VAR}` references resolve from `env` (default `process.env`); environment settings fill in
 * what the text leaves out (the text wins), and the env endpoint schemes apply only when the text lists no endpoints.
 *
 * @example
 * const config = parseConfig('[[endpoints]]\nname = "a"\nbase_url = "https://api.openai.com/v1"\napi_key = "${KEY}"', 'toml', { KEY: 'sk-…' });
 */
export function parseConfig(
  text: string,
  format: ConfigFormat,
  env: Env = process.env,
  path?: string,
): LbConfig {
  const label = path ?? `${format} config`;
  const raw = parseText(text, format, label);
  const e = envToDocument(env);
  const fileHasEndpoints = raw.endpoints !== undefined || raw.providers !== undefined;
  const fileHas = (parts: readonly PropertyKey[]) => {
    let o: unknown = raw;
    for (const p of parts) {
      if (typeof o !== 'object' || o === null) return false;
      o = (o as Record<PropertyKey, unknown>)[p as string];
    }
    return o !== undefined;
  };
  const envDoc = { ...e.doc };
  if (fileHasEndpoints) delete envDoc.endpoints;
  const warnings: ConfigIssue[] = e.warnings.slice();
  if (fileHasEndpoints && e.hasEndpoints) {
    const vars = e.origins
      .filter((o) => o.parts.length === 2 && o.parts[0] === 'endpoints' && !text.includes(`\${${o.env}`))
      .map((o) => o.env);
    if (vars.length)
      warnings.push({ path: vars.join(', '), message: `ignored: ${label} lists its own endpoints` });
  }
  const origins = e.origins.filter(
    (o) => !fileHas(o.parts) && (o.parts[0] !== 'endpoints' || !fileHasEndpoints),
  );
  const merged = mergeDocs(envDoc, raw);
  return compile(
    merged,
    {
      kind: 'file',
      ...(path ? { path } : {}),
      schemes: fileHasEndpoints ? [format] : [format, ...e.schemes],
    },
    { env, origins, errors: fileHasEndpoints ? [] : e.errors, warnings },
    label,
  );
}

/**
 * Reads a TOML, JSON or YAML file (by extension) into a config. See {@link parseConfig}.
 *
 * @example
 * const config = configFromFile('lb.toml');
 */
export function configFromFile(path: string, env: Env = process.env): LbConfig {
  const format = formatOf(path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigValidationError(
      [
        {
          path,
          message: `cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        },
      ],
      [],
      path,
    );
  }
  return parseConfig(text, format, env, path);
}

/** The format a file name stands for; throws naming the extension when unknown. */
export function formatOf(path: string): ConfigFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.toml') return 'toml';
  if (ext === '.json' || ext === '.jsonc') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  throw new ConfigValidationError(
    [{ path, message: `unknown config format ${JSON.stringify(ext)}: use .toml, .json, .yaml or .yml` }],
    [],
    path,
  );
}

function parseText(text: string, format: ConfigFormat, label: string): Record<string, unknown> {
  let raw: unknown;
  try {
    if (format === 'toml') raw = parseToml(text);
    else if (format === 'yaml') raw = parseYaml(text);
    else raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigValidationError([{ path: label, message: syntaxMessage(e, format, text) }], [], label);
  }
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigValidationError(
      [
        {
          path: label,
          message: `expected a table of settings at the top, received ${Array.isArray(raw) ? 'a list' : typeof raw}`,
        },
      ],
      [],
      label,
    );
  }
  return raw as Record<string, unknown>;
}

/** A syntax error's first line and position, never the source line (it may hold a key). */
function syntaxMessage(e: unknown, format: ConfigFormat, text: string): string {
  const err = e as {
    message?: string;
    line?: number;
    column?: number;
    linePos?: { line: number; col: number }[];
  };
  let first = String(err.message ?? e)
    .split('\n')[0]
    .replace(/:$/, '');
  let line = err.line ?? err.linePos?.[0]?.line;
  let col = err.column ?? err.linePos?.[0]?.col;
  if (format === 'json') {
    first = first.replace(/, ".*" is not valid JSON$/, '').replace(/ in JSON at position \d+.*$/, '');
    const pos = /position (\d+)/.exec(String(err.message));
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      line = before.split('\n').length;
      col = Number(pos[1]) - before.lastIndexOf('\n');
    }
    if (/^Unexpected token/.test(first)) first = 'unexpected token';
  }
  first = first.replace(/^Invalid TOML document: /, '').replace(/ at line \d+, column \d+$/, '');
  return `${format.toUpperCase()} syntax error${line ? ` at line ${line}${col ? `, column ${col}` : ''}` : ''}: ${first}`;
}

/** Reads `.env` then `.env.local` from `dir` with Node's `util.parseEnv`. Missing files are skipped. */
export function readDotenv(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['.env', '.env.local']) {
    let text: string;
    try {
      text = readFileSync(resolve(dir, name), 'utf8');
    } catch {
      continue;
    }
    const parseEnv = (util as { parseEnv?: (s: string) => Record<string, string> }).parseEnv;
    if (!parseEnv) throw new Error(`${name}: reading .env files needs Node >= 20.12 (util.parseEnv)`);
    Object.assign(out, parseEnv(text));
  }
  return out;
}

/**
 * Loads the config the way a server starts: `.env` / `.env.local` under the real environment, then the file named
 * by `file` or `LB_CONFIG` if any, else the env schemes. Throws a {@link ConfigValidationError} listing every error.
 *
 * @example
 * const config = loadConfig();            // process.env + .env files (+ LB_CONFIG)
 * const router = createRouter(config.router);
 * for (const w of config.warnings) console.warn(`${w.path}: ${w.message}`);
 */
export function loadConfig(options: LoadConfigOptions = {}): LbConfig {
  const cwd = options.cwd ?? process.cwd();
  let env: Env = options.env ?? process.env;
  if (options.dotenv ?? options.env === undefined) env = { ...readDotenv(cwd), ...stripEmpty(env) };
  const file = options.file ?? read(env, 'LB_CONFIG');
  if (file) return configFromFile(isAbsolute(file) ? file : resolve(cwd, file), env);
  return configFromEnv(env);
}

function stripEmpty(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * Checks a config document (the file format as an object: `{ endpoints: [{ name, base_url, api_key }], … }`) or a
 * `RouterConfig`-style object, and returns every error and warning without throwing. With `env`, `${VAR}` resolves.
 *
 * @example
 * const { valid, errors } = validateConfig({ endpoints: [{ name: 'a', base_url: 'htp:/x', api_key: 'k' }] });
 * // errors: [{ path: 'endpoints[0].base_url', message: 'not a URL: "htp:/x"' }]
 */
export function validateConfig(input: unknown, options: { env?: Env } = {}): ValidationResult {
  const r = runPipeline(toDocument(input), { env: options.env });
  return { valid: r.errors.length === 0, errors: r.errors, warnings: r.warnings };
}

/** Accepts a `RouterConfig`/`LbConfig`-shaped object (camelCase, `url`) by mapping it to the document format. */
export function toDocument(input: unknown): unknown {
  if (typeof input !== 'object' || input === null) return input;
  const o = input as Record<string, unknown>;
  const router = (typeof o.router === 'object' && o.router !== null ? o.router : undefined) as
    | Record<string, unknown>
    | undefined;
  const src = router ?? o;
  const eps = src.endpoints;
  const camel =
    router !== undefined || (Array.isArray(eps) && eps.some((e) => e && typeof e === 'object' && 'url' in e));
  if (!camel) return input;
  const doc: Record<string, unknown> = {};
  if (Array.isArray(eps)) {
    doc.endpoints = eps.map((e, i) => {
      if (!e || typeof e !== 'object') return e;
      const { id, name, url, apiKey, modelMap, timeoutMs, healthCheck, limits, ...rest } = e as Record<
        string,
        unknown
      >;
      const l = (limits ?? {}) as Record<string, unknown>;
      return dropUndefined({
        ...rest,
        name: name ?? id ?? `endpoint-${i + 1}`,
        id: id !== undefined && id !== name ? id : undefined,
        base_url: url,
        api_key: apiKey ?? '',
        model_map: modelMap,
        timeout: timeoutMs,
        health_check: healthCheck,
        max_rps: l.rps,
        max_rpm: l.rpm,
        max_tpm: l.tpm,
        burst: l.burst,
      });
    });
  }
  const map: Record<string, string> = {
    strategy: 'strategy',
    failover: 'failover',
    maxRetries: 'max_retries',
    timeoutMs: 'timeout',
    deadlineMs: 'deadline',
    models: 'models',
  };
  for (const [from, to] of Object.entries(map))
    if (src[from] !== undefined && typeof src[from] !== 'function') doc[to] = src[from];
  if (typeof doc.strategy !== 'string') delete doc.strategy;
  if (router && typeof o.defaultModel === 'string') doc.default_model = o.defaultModel;
  return doc;
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

export { isConfigured };

let yamlParse: typeof import('yaml').parse | undefined;

/**
 * YAML support is loaded on first use: a server configured by env or TOML never pays its ~7 MB of RSS. The library's
 * warnings (an unknown tag or directive) are not printed: it would write them to stderr with the source text they
 * are about, which may hold a key; what does not parse still throws.
 */
function parseYaml(text: string): unknown {
  yamlParse ??= (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse;
  return yamlParse(text, { logLevel: 'error' });
}
