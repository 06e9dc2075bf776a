import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import type { LbConfig } from '@lb/config-env';
import type { ServerConfigInput } from './options.js';

type ConfigEnv = typeof import('@lb/config-env');

/**
 * What the config loader runs: `@lb/config-env` (zod, smol-toml, yaml: ~8 MB of RSS once loaded, which no module
 * system lets go of) is loaded in a short-lived child process, so that a serving proxy never holds it. Not a worker
 * thread: a thread's glibc malloc arena stays behind in the process after the thread ends (~2-3 MB of RSS for the
 * proxy's whole life). The job goes in on the IPC channel and the answer comes back on it as plain data (a config is
 * plain data: JSON/TOML/env values); the child's stdout is not read, so nothing it prints can garble an answer.
 */
const LOADER = `
process.once('message', (w) => {
  const out = {};
  try {
    const c = require(w.path);
    // Strategies of other packages a config may name (\`strategy = "cheapest"\`, @lb/spend) are known to validation.
    if (w.spend) { try { require(w.spend).registerCheapest(); } catch {} }
    if (w.present) {
      let dot = {};
      try { dot = c.readDotenv(w.cwd); } catch {}
      out.present = c.isConfigured({ ...dot, ...process.env });
    }
    if (w.load && out.present !== false) out.config = c.loadConfig({ file: w.file, cwd: w.cwd, dotenv: true });
  } catch (e) {
    out.error = { name: e && e.name, message: String((e && e.message) || e), errors: e && Array.isArray(e.errors) ? e.errors.map((i) => ({ path: String(i.path), message: String(i.message) })) : undefined };
  }
  process.send(out, () => process.disconnect());
});`;

interface LoaderAnswer {
  present?: boolean;
  config?: LbConfig & ServerConfigInput;
  error?: { name?: string; message: string; errors?: { path: string; message: string }[] };
}

function spendPath(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('@lb/spend');
  } catch {
    return undefined;
  }
}

function configEnvPath(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('@lb/config-env');
  } catch {
    return undefined; // no import.meta (the CommonJS build): load in process
  }
}

function inLoader(job: {
  present?: boolean;
  load?: boolean;
  file?: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
}): Promise<LoaderAnswer> | undefined {
  const path = configEnvPath();
  if (path === undefined) return undefined;
  return new Promise<LoaderAnswer>((resolve, reject) => {
    const { env, ...rest } = job;
    const child = spawn(process.execPath, ['-e', LOADER], {
      env,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      windowsHide: true,
    });
    let answer: LoaderAnswer | undefined;
    child.once('message', (m: LoaderAnswer) => {
      answer = m;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (answer) resolve(answer);
      else reject(new Error(`the config loader exited (${signal ?? code}) without an answer`));
    });
    child.send({ ...rest, path, spend: spendPath() });
  }).then((a) => {
    if (a.error) throw Object.assign(new Error(a.error.message), a.error);
    return a;
  });
}

let inProcess: Promise<ConfigEnv> | undefined;
const configEnv = () =>
  (inProcess ??= import('@lb/spend').then((s) => {
    s.registerCheapest();
    return import('@lb/config-env');
  }));

/**
 * Loads the config the CLI runs with: the file when given (or `LB_CONFIG`), else the environment schemes of
 * `@lb/config-env`, with a `.env` file in `cwd` under the process environment.
 */
export async function loadServerConfig(
  opts: { file?: string; cwd?: string } = {},
): Promise<LbConfig & ServerConfigInput> {
  const cwd = opts.cwd ?? process.cwd();
  const w = inLoader({ load: true, file: opts.file, cwd, env: process.env });
  if (w) return (await w).config!;
  return (await configEnv()).loadConfig({ file: opts.file, cwd, dotenv: true });
}

/** True when the environment (or a `.env` file in `cwd`) configures at least one endpoint or a config file. */
export async function configIsPresent(env: NodeJS.ProcessEnv, cwd: string = process.cwd()): Promise<boolean> {
  const w = inLoader({ present: true, cwd, env });
  if (w) return (await w).present === true;
  const c = await configEnv();
  let dot: Record<string, string> = {};
  try {
    dot = c.readDotenv(cwd);
  } catch {
    // an unreadable .env counts as none
  }
  return c.isConfigured({ ...dot, ...env });
}

/**
 * What the CLI starts with, in one trip to the config loader: whether anything is configured (the environment, a
 * `.env` file in `cwd`, or the file given) and, when it is, the loaded config or the error loading it raised.
 */
export async function startupConfig(
  opts: { file?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ present: boolean; config?: LbConfig & ServerConfigInput; error?: unknown }> {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const check = opts.file === undefined;
  const w = inLoader({ present: check, load: true, file: opts.file, cwd, env });
  if (w === undefined) {
    if (check && !(await configIsPresent(env, cwd))) return { present: false };
    return loadServerConfig({ file: opts.file, cwd }).then(
      (config) => ({ present: true, config }),
      (error: unknown) => ({ present: true, error }),
    );
  }
  return w.then(
    (a) => ({ present: !check || a.present === true, config: a.config }),
    // The loader only loads once something is configured: an error means there was something to load.
    (error: unknown) => ({ present: true, error }),
  );
}

/** A config error as lines for the terminal: every problem with its path. Never a key. */
export function describeConfigError(e: unknown): string {
  const err = e as { message?: string; errors?: { path: string; message: string }[] };
  if (Array.isArray(err?.errors) && err.errors.length)
    return `lb-server: invalid config (${err.errors.length} error(s)):\n${err.errors.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`;
  return `lb-server: ${err?.message ?? String(e)}`;
}
