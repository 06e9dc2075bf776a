import { createRequire } from 'node:module';

/**
 * cockatiel, required rather than imported. Its package is CommonJS with no `exports` map, so an ESM `import` has
 * Node's loader lex its index and every module it re-exports (29 files) for export names: enough source that the
 * lexer got optimised by TurboFan on a background thread at every start, whose malloc arena (~3 MB) then stayed in
 * the process for good. `require` loads the same modules without lexing them.
 */
const cockatiel = createRequire(import.meta.url)('cockatiel') as typeof import('cockatiel');

export type { CircuitBreakerPolicy, IBreaker, IDisposable } from 'cockatiel';
export type CircuitState = import('cockatiel').CircuitState;
export const { CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen, SamplingBreaker } = cockatiel;
