import { type ConfigIssue, type ConfigValidationError, isConfigValidationError } from '../src/index.js';

/** Issues as `path: message` lines. */
export const lines = (issues: readonly ConfigIssue[]) => issues.map((i) => `${i.path}: ${i.message}`);

/** The ConfigValidationError `fn` throws (fails the test when it throws nothing or something else). */
export function errorOf(fn: () => unknown): ConfigValidationError {
  try {
    fn();
  } catch (e) {
    if (isConfigValidationError(e)) return e;
    throw e;
  }
  throw new Error('expected a ConfigValidationError');
}
