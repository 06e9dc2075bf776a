import { isConfigured, type LbConfig, loadConfig, readDotenv } from '@lb/config-env';
import type { ServerConfigInput } from './options.js';

/**
 * Loads the config the CLI runs with: the file when given (or `LB_CONFIG`), else the environment schemes of
 * `@lb/config-env`, with a `.env` file in `cwd` under the process environment.
 */
export function loadServerConfig(opts: { file?: string; cwd?: string } = {}): LbConfig & ServerConfigInput {
  return loadConfig({ file: opts.file, cwd: opts.cwd, dotenv: true });
}

/** True when the environment (or a `.env` file in `cwd`) configures at least one endpoint or a config file. */
export function configIsPresent(env: NodeJS.ProcessEnv, cwd: string = process.cwd()): boolean {
  let dot: Record<string, string> = {};
  try {
    dot = readDotenv(cwd);
  } catch {
    // an unreadable .env counts as none
  }
  return isConfigured({ ...dot, ...env });
}

/** A config error as lines for the terminal: every problem with its path. Never a key. */
export function describeConfigError(e: unknown): string {
  const err = e as { message?: string; errors?: { path: string; message: string }[] };
  if (Array.isArray(err?.errors) && err.errors.length)
    return `lb-server: invalid config (${err.errors.length} error(s)):\n${err.errors.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`;
  return `lb-server: ${err?.message ?? String(e)}`;
}
