import { describe, expect, it } from 'vitest';
import { pairedPercentileDiffCi, percentile } from '../lib/stats.mjs';

/** Deterministic samples: a skewed distribution (most fast, a slow tail), as latencies are. */
function latencies(n: number, seed: number): number[] {
  let x = seed;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const u = x / 2 ** 31;
    out.push(400 + 200 * u + (u > 0.97 ? 3000 * u : 0));
  }
  return out;
}

describe('pairedPercentileDiffCi', () => {
  it('is exactly the shift when one target is the other plus a constant', () => {
    const a = latencies(1000, 7);
    const b = a.map((v) => v + 150);
    expect(pairedPercentileDiffCi(b, a, 99)).toEqual([150, 150]);
    expect(pairedPercentileDiffCi(a, b, 50)).toEqual([-150, -150]);
  });

  it('brackets the observed difference of two independent samples, and is repeatable', () => {
    const a = latencies(1000, 11);
    const b = latencies(1000, 12345);
    const observed = percentile(a, 99) - percentile(b, 99);
    const ci = pairedPercentileDiffCi(a, b, 99);
    expect(ci).not.toBeNull();
    const [lo, hi] = ci as [number, number];
    expect(lo).toBeLessThanOrEqual(observed);
    expect(hi).toBeGreaterThanOrEqual(observed);
    // A p99 of 1,000 samples with a slow tail moves: the interval is wide, not a point.
    expect(hi - lo).toBeGreaterThan(50);
    expect(pairedPercentileDiffCi(a, b, 99)).toEqual(ci);
  });

  it('declines to guess from fewer than 20 pairs', () => {
    expect(pairedPercentileDiffCi([1, 2, 3], [1, 2, 3], 99)).toBeNull();
  });
});
