/**
 * A fast xorshift32 source of randomness in [0, 1), seeded from `Math.random`. Strategies draw from it on every pick:
 * unlike `Math.random()`, which allocates a heap number per call on V8 (16 B per pick), it allocates nothing. Not for
 * secrets; plenty for spreading load.
 *
 * @example
 * createRouter({ endpoints, random: fastRandom(42) }); // a seeded, repeatable router
 */
export function fastRandom(seed: number = (Math.random() * 0x100000000) >>> 0): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}
