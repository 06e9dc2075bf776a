import { describe, expect, it } from 'vitest';
import { MODES, runSelectorBench, STRATEGIES } from '../lib/selector.mjs';

describe('selector benchmark (smoke)', () => {
  it('measures every strategy, with and without a guard, and while weights reload', async () => {
    const rows = await runSelectorBench({ sizes: [1, 16], timeMs: 15, slices: 5 });
    expect(rows).toHaveLength(STRATEGIES.length * 2 * MODES.length);
    for (const r of rows) {
      expect(Object.keys(r).sort()).toEqual([
        'bytesPerPick',
        'endpoints',
        'mode',
        'nsPerPick',
        'picked',
        'strategy',
      ]);
      expect(r.nsPerPick).toBeGreaterThan(0);
      expect(r.bytesPerPick).toBeGreaterThanOrEqual(0);
      expect(r.picked).toBe(true);
    }
    expect(new Set(rows.map((r) => r.mode))).toEqual(
      new Set(['plain', 'guard', 'clock-guard', 'ratelimit', 'reload']),
    );
  });

  it('pick allocates ~0 bytes per call (heap deltas averaged over many calls)', async () => {
    // Clock and randomness injected as small integers so a boxed double from Math.random()/Date.now() does not hide
    // what the router itself allocates; round-robin needs neither.
    const rows = await runSelectorBench({
      sizes: [64],
      modes: ['plain', 'guard', 'clock-guard', 'ratelimit'],
      timeMs: 15,
      slices: 9,
      random: () => 0.5,
      now: () => 1,
    });
    for (const r of rows) expect(r.bytesPerPick, `${r.strategy}/${r.mode}`).toBeLessThan(2);
    // With the real clock and randomness too, as long as no guard needs the router's clock (the rate limiter with
    // budget left does not).
    const rr = await runSelectorBench({
      strategies: ['round-robin', 'weighted-random'],
      sizes: [64],
      modes: ['plain', 'guard', 'ratelimit'],
      timeMs: 15,
      slices: 9,
    });
    for (const r of rr) expect(r.bytesPerPick, `${r.strategy}/${r.mode}`).toBeLessThan(2);
  });
});
