import { LbError } from '@lb/core';
import type { ConfigIssue } from './issues.js';

/**
 * A config (env, file or object) failed validation. `errors` lists every problem at once, each with its path;
 * the message lists them one per line. Secrets never appear in either.
 * Use {@link isConfigValidationError} rather than `instanceof` (it survives two copies of the package).
 *
 * @example
 * try { loadConfig() } catch (e) {
 *   if (isConfigValidationError(e)) for (const { path, message } of e.errors) console.error(`${path}: ${message}`);
 * }
 */
export class ConfigValidationError extends LbError {
  readonly isConfigValidationError = true;
  /** Every problem found, in document order. */
  readonly errors: readonly ConfigIssue[];
  /** Problems that would not stop the config from loading. */
  readonly warnings: readonly ConfigIssue[];
  /** Where the config came from: `env`, or the file's path. */
  readonly source: string;

  constructor(errors: readonly ConfigIssue[], warnings: readonly ConfigIssue[] = [], source = 'config') {
    const n = errors.length;
    super(
      `Invalid lb ${source} (${n} error${n === 1 ? '' : 's'}):\n${errors.map((e) => `  ${e.path}: ${e.message}`).join('\n')}`,
      { status: 500, type: 'invalid_config', code: 'invalid_config' },
    );
    this.name = 'ConfigValidationError';
    this.errors = Object.freeze([...errors]);
    this.warnings = Object.freeze([...warnings]);
    this.source = source;
  }
}

/** True for a {@link ConfigValidationError}, across package copies. */
export function isConfigValidationError(e: unknown): e is ConfigValidationError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { isConfigValidationError?: unknown }).isConfigValidationError === true &&
    Array.isArray((e as { errors?: unknown }).errors)
  );
}
