/**
 * How many cases a property (fast-check) runs: `FUZZ_RUNS` from the environment (a long run: `scripts/fuzz.sh`),
 * else `ci`, sized for a few seconds in the suite.
 */
export function fuzzRuns(ci: number): number {
  const n = Number(process.env.FUZZ_RUNS);
  return Number.isInteger(n) && n > 0 ? n : ci;
}

/** A test's time limit (ms): an hour for a long run; else a hang guard well past the few seconds a property takes. */
export function fuzzTimeout(ci = 60_000): number {
  return process.env.FUZZ_RUNS ? 3_600_000 : ci;
}
