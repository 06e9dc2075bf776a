/**
 * How many cases a property (fast-check) runs: `FUZZ_RUNS` from the environment (a long run: `scripts/fuzz.sh`),
 * else `ci`, sized for a few seconds in the suite.
 */
export function fuzzRuns(ci: number): number {
  const n = Number(process.env.FUZZ_RUNS);
  return Number.isInteger(n) && n > 0 ? n : ci;
}

/** A long run gets a test timeout to match (ms); the suite's default otherwise. */
export function fuzzTimeout(ci = 30_000): number {
  return process.env.FUZZ_RUNS ? 3_600_000 : ci;
}
