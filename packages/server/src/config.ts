import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LbConfig, ServerConfig } from '@lb/config-env';
import type { LoaderAnswer, LoaderJob } from './config-loader.js';
import type { ServerConfigInput } from './options.js';

/**
 * The config loader's module (`config-loader.ts`, built as `dist/config-loader.js`), run in a short-lived child
 * process so that a serving proxy never holds `@lb/config-env` (see that module for why a process and not a thread).
 * Running from source (this package's tests), the built one; undefined when there is none (not built, or no
 * `import.meta.url`): the job then runs in this process.
 */
function loaderPath(): string | undefined {
  try {
    const here = import.meta.url;
    const file = fileURLToPath(
      new URL(here.endsWith('.ts') ? '../dist/config-loader.js' : './config-loader.js', here),
    );
    return existsSync(file) ? file : undefined;
  } catch {
    return undefined;
  }
}

/** The loader's flag (the same as `config-loader.ts`'s `LOADER_FLAG`, which this module must not import). */
const LOADER_FLAG = '--lb-config-loader';

type Answer = LoaderAnswer & { config?: LbConfig & ServerConfigInput };

function inChild(path: string, job: LoaderJob, env: NodeJS.ProcessEnv): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const child = spawn(process.execPath, [path, LOADER_FLAG], {
      env,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      windowsHide: true,
    });
    let answer: Answer | undefined;
    child.once('message', (m: Answer) => {
      answer = m;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (answer) resolve(answer);
      else reject(new Error(`the config loader exited (${signal ?? code}) without an answer`));
    });
    child.send(job);
  });
}

/** Runs a loader job in the child process (or in this one, without a built loader); throws the error it answers. */
async function load(job: LoaderJob, env: NodeJS.ProcessEnv): Promise<Answer> {
  const path = loaderPath();
  const a: Answer =
    path !== undefined
      ? await inChild(path, job, env)
      : await (await import('./config-loader.js')).runLoaderJob(job, env);
  if (a.error) throw Object.assign(new Error(a.error.message), a.error);
  return a;
}

/**
 * Loads the config the CLI runs with: the file when given (or `LB_CONFIG`), else the environment schemes of
 * `@lb/config-env`, with a `.env` file in `cwd` under the process environment.
 */
export async function loadServerConfig(
  opts: { file?: string; cwd?: string } = {},
): Promise<LbConfig & ServerConfigInput> {
  const a = await load({ load: true, file: opts.file, cwd: opts.cwd ?? process.cwd() }, process.env);
  return a.config!;
}

/** True when the environment (or a `.env` file in `cwd`) configures at least one endpoint or a config file. */
export async function configIsPresent(env: NodeJS.ProcessEnv, cwd: string = process.cwd()): Promise<boolean> {
  return (await load({ present: true, cwd }, env)).present === true;
}

/**
 * What the CLI starts with, in one trip to the config loader: whether anything is configured (the environment, a
 * `.env` file in `cwd`, or the file given) and, when it is, the loaded config or the error loading it raised. With
 * `demo`, the server's settings read from the environment alone when no config is loaded (`demo` gives values for
 * variables left unset); with `demo: 'force'`, only those settings.
 */
export async function startupConfig(
  opts: {
    file?: string;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    demo?: { force: boolean; defaults: Record<string, string> };
  } = {},
): Promise<{
  present: boolean;
  config?: LbConfig & ServerConfigInput;
  settings?: ServerConfig;
  error?: unknown;
}> {
  const cwd = opts.cwd ?? process.cwd();
  const settings = opts.demo?.defaults;
  if (opts.demo?.force)
    return load({ cwd, settings }, opts.env ?? process.env).then(
      (a) => ({ present: false, settings: a.settings }),
      (error: unknown) => ({ present: false, error }),
    );
  const check = opts.file === undefined;
  return load({ present: check, load: true, file: opts.file, cwd, settings }, opts.env ?? process.env).then(
    (a) => ({
      present: !check || a.present === true,
      config: a.config,
      ...(a.settings ? { settings: a.settings } : {}),
    }),
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
