import { maskKey, redact } from '@lb/core';
import { buildConfig } from './build.js';
import { type Origin, setAt } from './env.js';
import { ConfigValidationError } from './errors.js';
import { interpolate } from './interpolate.js';
import { type ConfigIssue, didYouMean, formatPath, show } from './issues.js';
import { type ConfigDocument, documentSchema, normalizeStrategy, UNKNOWN_KEYS } from './schema.js';
import { checkSpend, spendSecrets } from './spend.js';
import type { ConfigSource, Env, LbConfig } from './types.js';

/** The outcome of {@link validateConfig}. */
export interface ValidationResult {
  /** True when there are no errors (warnings allowed). */
  valid: boolean;
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
}

export interface PipelineOptions {
  /** Variables for `${VAR}`; undefined: no interpolation. */
  env?: Env;
  /** Env var names for document paths (env schemes). */
  origins?: readonly Origin[];
  /** Issues found before (env parsing). */
  errors?: ConfigIssue[];
  warnings?: ConfigIssue[];
  /** Whether a config without endpoints is an error (true) or a warning. */
  requireEndpoints?: boolean;
  /** Message when there are no endpoints. */
  noEndpointsMessage?: string;
}

interface PipelineResult {
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
  doc?: ConfigDocument;
  secrets: string[];
}

const isTable = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Runs the one validator every source goes through: interpolation, schema, cross-checks, path naming. */
export function runPipeline(raw: unknown, opts: PipelineOptions = {}): PipelineResult {
  const errors: ConfigIssue[] = [...(opts.errors ?? [])];
  const warnings: ConfigIssue[] = [...(opts.warnings ?? [])];
  const origins: Origin[] = [...(opts.origins ?? [])];
  if (!isTable(raw)) {
    errors.push({ path: '(root)', message: `expected a table of settings, received ${show(raw)}` });
    return { errors, warnings, secrets: [] };
  }
  let doc: Record<string, unknown> = { ...raw };
  delete doc.$schema;
  if (opts.env) doc = interpolate(doc, opts.env, errors) as Record<string, unknown>;

  // `[providers.<name>]` tables (Berry's layout) become a list; errors keep naming `providers.<name>`.
  if (isTable(doc.providers)) {
    const list: unknown[] = [];
    for (const [name, p] of Object.entries(doc.providers)) {
      origins.push({ parts: ['providers', list.length], env: formatPath(['providers', name]) });
      list.push(isTable(p) && p.name === undefined ? { name, ...p } : p);
    }
    doc.providers = list;
  }

  // With plugins listed, a strategy name no built-in knows may be one a plugin registers: it passes here as it is, and
  // lb-server checks it once it has loaded the plugins (they are code: this package never runs them).
  const deferred = deferPluginStrategies(doc);
  const parsed = documentSchema.safeParse(doc);
  if (parsed.success) for (const [set, name] of deferred) set(parsed.data as Record<string, unknown>, name);
  if (!parsed.success) {
    for (const iss of parsed.error.issues) {
      if (iss.message.startsWith(UNKNOWN_KEYS)) {
        for (const [k, m] of JSON.parse(iss.message.slice(UNKNOWN_KEYS.length)) as [string, string][])
          errors.push({ path: formatPath([...iss.path, k]), message: m });
      } else errors.push({ path: formatPath(iss.path), message: iss.message });
    }
  }
  crossCheck(doc, errors, warnings, opts);
  checkSpend(doc, errors, warnings);

  const order = documentOrder(doc);
  const rank = (i: ConfigIssue) => {
    for (let p = i.path; p; p = p.replace(/(\.[^.[]*|\[[^\]]*\])$/, '')) {
      const r = order.get(p);
      if (r !== undefined) return r;
      if (!/[.[]/.test(p)) break;
    }
    return -1;
  };
  const byDocument = (list: ConfigIssue[]) =>
    list
      .map((i, n) => ({ i, n, r: rank(i) }))
      .sort((x, y) => x.r - y.r || x.n - y.n)
      .map((x) => x.i);
  errors.splice(0, errors.length, ...byDocument(errors));
  warnings.splice(0, warnings.length, ...byDocument(warnings));
  const secrets = collectSecrets(doc);
  const rename = (i: ConfigIssue): ConfigIssue => ({
    path: renamePath(i.path, origins),
    message: redact(i.message, secrets),
  });
  return {
    errors: dedupe(errors.map(rename)),
    warnings: dedupe(warnings.map(rename)),
    doc: parsed.success && errors.length === 0 ? parsed.data : undefined,
    secrets,
  };
}

/** Each path of the document → its position in a depth-first walk (the order a reader sees it in). */
function documentOrder(doc: unknown): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (v: unknown, path: PropertyKey[]) => {
    out.set(formatPath(path), out.size);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (isTable(v)) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(doc, []);
  return out;
}

function dedupe(list: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return list.filter((i) => {
    const k = `${i.path}\n${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Longest origin whose path is a prefix of `path` names the source instead. */
function renamePath(path: string, origins: readonly Origin[]): string {
  let best: { len: number; env: string; rest: string } | undefined;
  for (const o of origins) {
    const p = formatPath(o.parts);
    if (path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`)) {
      if (!best || p.length > best.len) best = { len: p.length, env: o.env, rest: path.slice(p.length) };
    }
  }
  if (!best) return path;
  // An env var stands for the whole value; a renamed table (providers.x) keeps the rest of the path.
  return /^[A-Z][A-Z0-9_]*$/.test(best.env) ? best.env : best.env + best.rest;
}

function collectSecrets(doc: Record<string, unknown>): string[] {
  const out: string[] = [];
  const eps = [doc.endpoints, doc.providers].flatMap((l) => (Array.isArray(l) ? l : []));
  for (const e of eps) {
    if (!isTable(e)) continue;
    if (typeof e.api_key === 'string') out.push(e.api_key);
    if (isTable(e.headers)) for (const v of Object.values(e.headers)) if (typeof v === 'string') out.push(v);
  }
  if (isTable(doc.server)) {
    const s = doc.server;
    if (typeof s.admin_key === 'string') out.push(s.admin_key);
    if (typeof s.redis_url === 'string') {
      out.push(s.redis_url);
      try {
        const pw = decodeURIComponent(new URL(s.redis_url).password);
        if (pw) out.push(pw);
      } catch {}
    }
    if (Array.isArray(s.api_keys)) {
      for (const k of s.api_keys) if (typeof k === 'string') out.push(k);
    } else if (typeof s.api_keys === 'string') out.push(...s.api_keys.split(',').map((k) => k.trim()));
  }
  out.push(...spendSecrets(doc));
  return out.filter((s) => s.length >= 4);
}

const LOCAL = /^(localhost|127\.|\[::1\]|0\.0\.0\.0|host\.docker\.internal)/;

/** Checks that span several values: identity, references, keys. Tolerant of values the schema rejects. */
function crossCheck(
  doc: Record<string, unknown>,
  errors: ConfigIssue[],
  warnings: ConfigIssue[],
  opts: PipelineOptions,
): void {
  const eps: { path: PropertyKey[]; e: Record<string, unknown> }[] = [];
  for (const key of ['endpoints', 'providers'] as const) {
    const l = doc[key];
    if (Array.isArray(l)) l.forEach((e, i) => isTable(e) && eps.push({ path: [key, i], e }));
  }
  if (eps.length === 0) {
    const issue = {
      path: 'endpoints',
      message: opts.noEndpointsMessage ?? 'no endpoints configured: add at least one [[endpoints]] entry',
    };
    (opts.requireEndpoints === false ? warnings : errors).push(issue);
  }
  const ids = new Map<string, string>();
  const byName = new Map<string, string>();
  const enabled = new Map<string, boolean>();
  const seenUpstreams = new Map<string, string>();
  for (const { path, e } of eps) {
    const id = typeof e.id === 'string' ? e.id : typeof e.name === 'string' ? e.name : undefined;
    if (id !== undefined) {
      const prev = ids.get(id);
      const where = formatPath([...path, typeof e.id === 'string' ? 'id' : 'name']);
      if (prev !== undefined)
        errors.push({ path: where, message: `duplicate name ${show(id)} (also used by ${prev})` });
      else ids.set(id, formatPath(path));
      if (typeof e.name === 'string') byName.set(e.name, id);
      enabled.set(id, e.enabled !== false && e.enabled !== 'false');
    }
    if (e.api_key === undefined) {
      errors.push({
        path: formatPath([...path, 'api_key']),
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the message shows the file syntax.
        message: 'missing: set the key (or "${ENV_VAR}"), or api_key = "" for an upstream that needs none',
      });
    }
    if (e.timeout !== undefined && e.timeout_seconds !== undefined) {
      errors.push({
        path: formatPath([...path, 'timeout_seconds']),
        message: 'set both timeout and timeout_seconds; keep one',
      });
    }
    if (typeof e.base_url === 'string') {
      const host = e.base_url.replace(/^https?:\/\//, '');
      if (e.base_url.startsWith('http://') && e.api_key && !LOCAL.test(host)) {
        warnings.push({
          path: formatPath([...path, 'base_url']),
          message: `sends its key unencrypted over http:// to ${show(host.split('/')[0])}`,
        });
      }
      if (typeof e.api_key === 'string' && e.api_key) {
        const k = `${e.base_url.replace(/\/+$/, '')}\n${e.api_key}`;
        const prev = seenUpstreams.get(k);
        if (prev)
          warnings.push({
            path: formatPath(path),
            message: `same base_url and key as ${prev} (key ${maskKey(e.api_key)}): they share one upstream quota`,
          });
        else seenUpstreams.set(k, formatPath(path));
      }
    }
  }
  if (eps.length > 0 && [...enabled.values()].every((v) => !v)) {
    warnings.push({ path: 'endpoints', message: 'every endpoint is disabled: no request can be served' });
  }

  if (isTable(doc.models)) {
    for (const [model, g] of Object.entries(doc.models)) {
      if (!isTable(g)) continue;
      const gp: PropertyKey[] = ['models', model];
      const listKey = g.backends !== undefined ? 'backends' : 'providers';
      const list = g[listKey];
      if (g.backends !== undefined && g.providers !== undefined) {
        errors.push({
          path: formatPath([...gp, 'providers']),
          message: 'set both backends and providers; keep one',
        });
      }
      if (list === undefined || (Array.isArray(list) && list.length === 0)) {
        errors.push({ path: formatPath([...gp, 'backends']), message: 'missing: list at least one backend' });
        continue;
      }
      if (!Array.isArray(list)) continue;
      list.forEach((b, i) => {
        if (!isTable(b)) return;
        const bp = [...gp, listKey, i];
        const refKey = b.endpoint !== undefined ? 'endpoint' : 'provider';
        const ref = b[refKey];
        if (b.endpoint !== undefined && b.provider !== undefined) {
          errors.push({
            path: formatPath([...bp, 'provider']),
            message: 'set both endpoint and provider; keep one',
          });
        } else if (ref === undefined) {
          errors.push({
            path: formatPath([...bp, 'endpoint']),
            message: 'missing: name the endpoint this backend uses',
          });
        } else if (typeof ref === 'string' && !ids.has(ref) && !byName.has(ref)) {
          errors.push({
            path: formatPath([...bp, refKey]),
            message: `unknown endpoint ${show(ref)}${didYouMean(ref, ids.keys()).replace(/^; (.*)$/, ' ($1)')}; known: ${[...ids.keys()].join(', ') || 'none'}`,
          });
        } else if (
          typeof ref === 'string' &&
          b.enabled !== false &&
          enabled.get(byName.get(ref) ?? ref) === false
        ) {
          warnings.push({ path: formatPath([...bp, refKey]), message: `endpoint ${show(ref)} is disabled` });
        }
      });
    }
  }
}

/** Runs the pipeline and builds, or throws a {@link ConfigValidationError} listing every error. */
export function compile(raw: unknown, source: ConfigSource, opts: PipelineOptions, label: string): LbConfig {
  const r = runPipeline(raw, opts);
  if (r.errors.length || !r.doc) throw new ConfigValidationError(r.errors, r.warnings, label);
  return buildConfig(r.doc, source, r.warnings);
}

/**
 * When the document lists `plugins`, swaps each strategy name no registered strategy knows (top level and per model
 * group) for a known one before the schema runs, and returns how to put the name back into the parsed document.
 */
function deferPluginStrategies(
  doc: Record<string, unknown>,
): [(parsed: Record<string, unknown>, name: string) => void, string][] {
  const listed = Array.isArray(doc.plugins) ? doc.plugins.length > 0 : typeof doc.plugins === 'string';
  if (!listed) return [];
  const out: [(parsed: Record<string, unknown>, name: string) => void, string][] = [];
  const unknown = (v: unknown): v is string =>
    typeof v === 'string' && v.trim() !== '' && normalizeStrategy(v) === undefined;
  if (unknown(doc.strategy)) {
    out.push([(p, n) => (p.strategy = n), doc.strategy]);
    doc.strategy = 'priority';
  }
  if (isTable(doc.models)) {
    const models: Record<string, unknown> = { ...doc.models };
    for (const [key, g] of Object.entries(models)) {
      if (!isTable(g) || !unknown(g.strategy)) continue;
      out.push([
        (p, n) => ((p.models as Record<string, Record<string, unknown>>)[key].strategy = n),
        g.strategy,
      ]);
      models[key] = { ...g, strategy: 'priority' };
    }
    doc.models = models;
  }
  return out;
}

/** Merges `over` onto `under` (tables deeply; `over` wins). */
export function mergeDocs(
  under: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...under };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isTable(v) && isTable(out[k]) ? mergeDocs(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

export { setAt };
