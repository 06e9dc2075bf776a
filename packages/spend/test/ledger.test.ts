import { describe, expect, it } from 'vitest';
import { OTHER, SpendLedger } from '../src/index.js';

describe('SpendLedger', () => {
  it('sums spend today and this month by key, model and endpoint; unpriced requests are counted apart, never as 0', () => {
    let now = Date.UTC(2026, 11, 31, 23, 0);
    const ledger = new SpendLedger({ now: () => now });
    ledger.record('team-a', 'gpt-4o-mini', 'contract', 0.002, 1500);
    ledger.record('team-a', 'my-llama', 'list', undefined, 300);
    ledger.record('team-b', 'gpt-4o-mini', 'list', 0.003, 1000);
    let s = ledger.snapshot();
    expect(s.today.period).toBe('2026-12-31');
    expect(s.month.period).toBe('2026-12');
    expect(s.today.total).toEqual({ usd: 0.005, tokens: 2800, requests: 3, unpriced: 1 });
    expect(s.today.byKey['team-a']).toEqual({ usd: 0.002, tokens: 1800, requests: 2, unpriced: 1 });
    expect(s.today.byModel['gpt-4o-mini'].usd).toBeCloseTo(0.005, 12);
    expect(s.today.byEndpoint.list).toEqual({ usd: 0.003, tokens: 1300, requests: 2, unpriced: 1 });
    // UTC midnight, and a new month: both periods start over.
    now = Date.UTC(2027, 0, 1);
    ledger.record(undefined, undefined, undefined, 0.001, 10);
    s = ledger.snapshot();
    expect(s.today.period).toBe('2027-01-01');
    expect(s.month.period).toBe('2027-01');
    expect(s.today.byKey).toEqual({ '(none)': { usd: 0.001, tokens: 10, requests: 1, unpriced: 0 } });
    expect(s.month.total.requests).toBe(1);
  });

  it('keeps its labels bounded: past maxLabels, new ones count under (other)', () => {
    const ledger = new SpendLedger({ maxLabels: 3, now: () => 0 });
    for (let i = 0; i < 50; i++) ledger.record('k', `model-${i}`, 'e', 1, 1);
    const byModel = ledger.snapshot().today.byModel;
    expect(Object.keys(byModel)).toEqual(['model-0', 'model-1', 'model-2', OTHER]);
    expect(byModel[OTHER].requests).toBe(47);
    ledger.record('k', 'model-1', 'e', 1, 1);
    expect(ledger.snapshot().today.byModel['model-1'].requests).toBe(2);
  });

  it('a request repeating the one before counts where a fresh one would, across a new day and labels over the bound', () => {
    let now = Date.UTC(2026, 11, 31, 23, 0);
    const ledger = new SpendLedger({ maxLabels: 2, now: () => now });
    const seq: [string | undefined, string | undefined, string | undefined][] = [
      ['a', 'm1', 'e1'],
      ['a', 'm1', 'e1'],
      ['b', 'm2', 'e1'],
      ['b', 'm3', 'e2'],
      ['b', 'm3', 'e2'],
      ['a', 'm1', 'e1'],
      [undefined, undefined, undefined],
      [undefined, undefined, undefined],
    ];
    for (const [k, m, e] of seq) ledger.record(k, m, e, 1, 2);
    let s = ledger.snapshot().today;
    expect(s.total.requests).toBe(8);
    expect(Object.fromEntries(Object.entries(s.byKey).map(([k, v]) => [k, v.requests]))).toEqual({
      a: 3,
      b: 3,
      [OTHER]: 2,
    });
    expect(Object.fromEntries(Object.entries(s.byModel).map(([k, v]) => [k, v.requests]))).toEqual({
      m1: 3,
      m2: 1,
      [OTHER]: 4,
    });
    expect(s.byEndpoint.e1).toEqual({ usd: 4, tokens: 8, requests: 4, unpriced: 0 });
    // The same labels again after midnight: counted in the new day, the month goes on.
    now = Date.UTC(2026, 11, 31, 23, 59);
    ledger.record('a', 'm1', 'e1', 1, 2);
    now = Date.UTC(2027, 0, 1, 0, 1);
    ledger.record('a', 'm1', 'e1', 1, 2);
    s = ledger.snapshot().today;
    expect(s.period).toBe('2027-01-01');
    expect(s.byKey).toEqual({ a: { usd: 1, tokens: 2, requests: 1, unpriced: 0 } });
    expect(ledger.snapshot().month.byModel.m1.requests).toBe(1);
  });

  it('endpoints in turn, more of them than it remembers, each count their own', () => {
    const ledger = new SpendLedger({ now: () => 0 });
    for (let i = 0; i < 60; i++) ledger.record(undefined, 'm', `e${i % 6}`, 0.5, 1);
    const s = ledger.snapshot();
    for (let e = 0; e < 6; e++)
      expect(s.today.byEndpoint[`e${e}`]).toEqual({ usd: 5, tokens: 10, requests: 10, unpriced: 0 });
    expect(s.month.byKey['(none)'].requests).toBe(60);
    expect(s.month.total.usd).toBe(30);
  });

  it('snapshots are copies', () => {
    const ledger = new SpendLedger();
    ledger.record('k', 'm', 'e', 1, 1);
    const s = ledger.snapshot();
    (s.today.total as { usd: number }).usd = 99;
    expect(ledger.snapshot().today.total.usd).toBe(1);
    expect(() => new SpendLedger({ maxLabels: 0 })).toThrow('maxLabels must be an integer >= 1, received 0');
  });
});
