/** What {@link fastRandom} returns: a source of [0, 1) that also draws small integers. */
export interface FastRandom {
  (): number;
  /**
   * The next draw as an integer in [0, 2^30): a small integer, which V8 returns from a call without boxing it
   * (a fraction returned from a call that was not inlined costs a 16-byte heap number). Strategies use it when present.
   */
  readonly u30: () => number;
}

/** 2^-30: scales a {@link FastRandom.u30} draw to [0, 1). */
export const U30_SCALE = 1 / 0x40000000;

/**
 * A fast xorshift32 source of randomness in [0, 1), seeded from `Math.random`. Strategies draw from it on every pick
 * through its integer form, which allocates nothing whether or not the JIT inlines the call (`Math.random()`
 * allocates a heap number per call on V8: 16 B per pick). Not for secrets; plenty for spreading load.
 *
 * @example
 * createRouter({ endpoints, random: fastRandom(42) }); // a seeded, repeatable router
 */
export function fastRandom(seed: number = (Math.random() * 0x100000000) >>> 0): FastRandom {
  let x = seed | 0 || 0x9e3779b9;
  const u30 = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 2;
  };
  const next = (() => u30() * U30_SCALE) as FastRandom;
  (next as { u30: () => number }).u30 = u30;
  return next;
}
