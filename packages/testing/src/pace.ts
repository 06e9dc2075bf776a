import { execFileSync } from 'node:child_process';

/**
 * How long a bare node process takes to start and exit on this machine now, ms. A loaded CI machine takes seconds
 * where an idle one takes ~40 ms: tests that start processes take their time limits from this (see
 * {@link pacedTimeout}), not from vitest's fixed 5 s.
 */
export function nodeStartMs(): number {
  const t0 = performance.now();
  execFileSync(process.execPath, ['-e', '']);
  return performance.now() - t0;
}

/** A time limit for work worth `units` of `unitMs` each (4x slack), never under `floorMs`. */
export function pacedTimeout(unitMs: number, units: number, floorMs = 5_000): number {
  return Math.max(floorMs, Math.round(4 * units * unitMs));
}
