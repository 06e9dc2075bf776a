import { isSpendError, type SpendError } from '../src/index.js';

/** The SpendError `f` throws (fails the test when it throws nothing or something else). */
export function spendErrorOf(f: () => unknown): SpendError {
  try {
    f();
  } catch (e) {
    if (isSpendError(e)) return e;
    throw e;
  }
  throw new Error('expected a SpendError');
}
