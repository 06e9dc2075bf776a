import { describe, expect, it } from 'vitest';
import { breaksPastProbation } from '../lib/chaos.mjs';

const r = (endpoint: string, at: number, ms: number, broken: boolean) => ({
  endpoint,
  at,
  ms,
  broken,
  status: 200,
});

describe('breaksPastProbation', () => {
  it('excuses breaks live at the first one, and counts one sent after a break reached its client', () => {
    const first = r('A', 0, 20, true);
    const live = r('A', 10, 20, true); // sent before the first break ended: nothing could hold it
    const other = r('B', 25, 20, false);
    expect(breaksPastProbation([first, live, other])).toBe(0);
    const late = r('A', 60, 20, true); // sent 40 ms after the first break reached its client
    expect(breaksPastProbation([first, live, other, late])).toBe(1);
  });

  it('excuses a break after a clean stream of the same endpoint lifted probation, not one of another endpoint', () => {
    const first = r('A', 0, 20, true);
    const late = r('A', 300, 20, true);
    expect(breaksPastProbation([first, r('B', 100, 50, false), late])).toBe(1);
    expect(breaksPastProbation([first, r('A', 100, 50, false), late])).toBe(0);
  });

  it('is null when no result says which endpoint answered', () => {
    expect(breaksPastProbation([{ at: 0, ms: 5, broken: true, status: 200 }])).toBeNull();
  });
});
