/**
 * The config loader: the child process `config.ts` starts to load a config, so that a serving proxy never holds
 * `@lb/config-env` (zod, smol-toml, yaml: ~8 MB of RSS once loaded, which no module system lets go of). Not a worker
 * thread: a thread's glibc malloc arena stays behind in the process after the thread ends (~2-3 MB of RSS for the
 * proxy's whole life). The job comes in on the IPC channel and the answer goes back on it as plain data (a config is
 * plain data: JSON/TOML/env values); the parent does not read the child's stdout, so nothing printed can garble an
 * answer. Built by tsup as its own entry (`dist/config-loader.js`); it serves only when started with
 * {@link LOADER_FLAG} and an IPC channel, so importing it (the in-process fallback, tests) starts nothing.
 */
import type { Env, LbConfig, ServerConfig } from '@lb/config-env';

/** The argument the parent passes: the module serves a job only when started with it. */
export const LOADER_FLAG = '--lb-config-loader';

/** What the parent asks for. The environment is the child's own (`spawn`'s `env`), or `env` in process. */
export interface LoaderJob {
  /** Whether anything is configured: the environment, or a `.env` file in `cwd`. */
  present?: boolean;
  /** Load the config (when `present` is asked too: only when something is configured). */
  load?: boolean;
  /** Config file; default `LB_CONFIG`, else the environment schemes. */
  file?: string;
  /** Directory of `.env` files and relative paths. */
  cwd: string;
  /**
   * The server's settings from the environment alone (no endpoint needed: the demo), unless a config was loaded;
   * these values stand in for variables the environment (and `.env`) leaves unset (the demo's `LOG_LEVEL=warn`).
   */
  settings?: Record<string, string>;
}

/** A loading error as plain data: its name, message and (a `ConfigValidationError`'s) problems with their paths. */
export interface LoaderError {
  name?: string;
  message: string;
  errors?: { path: string; message: string }[];
}

/** The answer: what was asked for, or the error loading raised. */
export interface LoaderAnswer {
  present?: boolean;
  config?: LbConfig;
  settings?: ServerConfig;
  error?: LoaderError;
}

/**
 * Does one job: whether anything is configured and/or the loaded config, never throwing (an error is part of the
 * answer). Strategies of other packages a config may name (`strategy = "cheapest"`, `@lb/spend`) are registered first
 * so that validation knows them. The packages are imported here, not at the top, so that the CommonJS build of the
 * in-process fallback loads them only when it runs a job.
 */
export async function runLoaderJob(job: LoaderJob, env: Env = process.env): Promise<LoaderAnswer> {
  const out: LoaderAnswer = {};
  try {
    const [{ isConfigured, loadConfig, readDotenv, serverSettingsFromEnv }, { registerCheapest }] =
      await Promise.all([import('@lb/config-env'), import('@lb/spend')]);
    registerCheapest();
    let dot: Record<string, string> | undefined;
    const dotenv = () => {
      try {
        dot ??= readDotenv(job.cwd);
      } catch {
        dot = {}; // an unreadable .env counts as none
      }
      return dot;
    };
    if (job.present) out.present = isConfigured({ ...dotenv(), ...env });
    if (job.load && out.present !== false)
      out.config = loadConfig({ file: job.file, cwd: job.cwd, dotenv: true, env });
    if (job.settings && out.config === undefined)
      out.settings = serverSettingsFromEnv({ ...job.settings, ...dotenv(), ...stripUnset(env) });
  } catch (e) {
    out.error = toLoaderError(e);
  }
  return out;
}

function stripUnset(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

function toLoaderError(e: unknown): LoaderError {
  const err = e as { name?: unknown; message?: unknown; errors?: unknown } | null | undefined;
  const list =
    err && Array.isArray(err.errors) ? (err.errors as { path?: unknown; message?: unknown }[]) : undefined;
  return {
    ...(typeof err?.name === 'string' ? { name: err.name } : {}),
    message: String(err?.message ?? e),
    ...(list ? { errors: list.map((i) => ({ path: String(i.path), message: String(i.message) })) } : {}),
  };
}

// Started as the loader: one job, one answer, then the channel closes and the process ends.
if (process.argv.includes(LOADER_FLAG) && typeof process.send === 'function') {
  process.once('message', (job: LoaderJob) => {
    void runLoaderJob(job).then((answer) => process.send?.(answer, () => process.disconnect()));
  });
}
