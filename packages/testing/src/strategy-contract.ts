import { type Candidate, Endpoint, type EndpointStats, type PickContext, type Strategy } from '@lb/core';
import { describe, expect, it } from 'vitest';

/** Equal, fresh statistics: every candidate of equal standing. */
function stats(): EndpointStats {
  return {
    requests: 0,
    successes: 0,
    failures: 0,
    consecutiveErrors: 0,
    inFlight: 0,
    ewmaLatencyMs: 10,
    latencySamples: 1,
    lastLatencyMs: 10,
    lastUsedAt: 0,
    lastErrorAt: 0,
    lastError: undefined,
    lastStatus: undefined,
    errorsByKind: {},
  };
}

function cands(n: number): Candidate[] {
  return Array.from({ length: n }, (_, i) => {
    const endpoint = new Endpoint({ id: `e${i}`, url: `http://127.0.0.1:${9000 + i}/v1` });
    return {
      endpoint,
      index: i,
      weight: 1,
      priority: 1,
      upstreamModel: undefined,
      stats: stats(),
    };
  });
}

/**
 * The contract every strategy runs (built-ins and plugins alike), hono-router style:
 * `runStrategyContract({ name: 'mine', create: () => myStrategy })`.
 */
export function runStrategyContract(opts: {
  name: string;
  create: () => Strategy;
  /** The strategy spreads load over equal candidates (false for e.g. a plain "first"). Default true. */
  spreads?: boolean;
}) {
  describe(`strategy contract: ${opts.name}`, () => {
    const ctx: PickContext = { model: undefined, requestId: undefined, attempt: 1 };
    it('has a name', () => {
      expect(typeof opts.create().name).toBe('string');
      expect(opts.create().name.length).toBeGreaterThan(0);
    });
    it('returns undefined (or nothing) for no candidates', () => {
      expect(opts.create().pick([], ctx)).toBeUndefined();
    });
    it('returns the only candidate when there is one', () => {
      const c = cands(1);
      expect(opts.create().pick(c, ctx)).toBe(c[0]);
    });
    it('always returns one of the candidates it was given', () => {
      const s = opts.create();
      for (const n of [2, 3, 7, 64]) {
        const c = cands(n);
        for (let i = 0; i < 200; i++) expect(c).toContain(s.pick(c, ctx));
      }
    });
    it('does not change the candidates array', () => {
      const c = cands(5);
      const copy = [...c];
      opts.create().pick(c, ctx);
      expect(c).toEqual(copy);
    });
    if (opts.spreads === false) return;
    it('reaches every candidate of equal standing over many picks', () => {
      const s = opts.create();
      const c = cands(4);
      const seen = new Set<string>();
      for (let i = 0; i < 2000; i++) {
        const p = s.pick(c, ctx);
        expect(p).toBeDefined();
        seen.add(p!.endpoint.id);
        p!.stats.inFlight = 0;
      }
      expect([...seen].sort()).toEqual(['e0', 'e1', 'e2', 'e3']);
    });
  });
}
