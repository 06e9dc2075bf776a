import { describe, expect, it } from 'vitest';
import { runSpendBench } from '../lib/spend.mjs';

describe('spend benchmark (smoke)', () => {
  it('measures cost, key lookup, a whole request and cheapest picks', () => {
    const rows = runSpendBench({ n: 2_000, rounds: 1 });
    expect(rows.map((r) => r.what)).toEqual([
      'costOf (chat usage with cached tokens, dated model name)',
      'key lookup (SHA-256, map read, constant-time compare)',
      'key lookup + check + budget admit + costOf + settle (the whole request)',
      'the same through Spend: admit(secret, model, tokens) + settle(admission, usage, model)',
      'the same for unnamed LB_API_KEYS keys (lookup only: no budget, no counter)',
      'router.pick, cheapest, 4 endpoints',
      'router.pick, cheapest, 64 endpoints',
    ]);
    for (const r of rows) {
      expect(r.ns).toBeGreaterThanOrEqual(0);
      expect(r.bytes).toBeGreaterThanOrEqual(0);
    }
  });
});
