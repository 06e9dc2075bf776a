import { describe, expect, it } from 'vitest';
import { CONTROL } from '../lib/proxy.mjs';
import { runShort } from './run-short.js';

describe('proxy benchmark (smoke: direct and the bare undici floor)', () => {
  it('writes proxy-short.json with every field and prints the tables', { timeout: 60_000 }, async () => {
    const { stdout, result: r } = await runShort(
      'run.mjs',
      ['--only=proxy', '--no-server', '--no-portkey'],
      'proxy-short.json',
      55_000,
    );
    expect(stdout).toContain('Max throughput at concurrency 32');
    for (const k of [
      'at',
      'node',
      'layout',
      'targets',
      'oneInFlight',
      'oneInFlightSparse',
      'openLoop',
      'maxRps',
      'streaming',
      'rss',
    ]) {
      expect(r, k).toHaveProperty(k);
    }
    expect(r.targets.map((t: { name: string }) => t.name)).toEqual(['direct', 'undici-bare']);
    for (const x of r.oneInFlight) {
      expect(x.p50Us).toBeGreaterThan(0);
      expect(x.p99Us).toBeGreaterThanOrEqual(x.p50Us);
      expect(Object.keys(x.statuses)).toEqual(['200']);
    }
    expect(r.oneInFlightSparse.map((x: { name: string }) => x.name)).toEqual(['direct', 'undici-bare']);
    for (const x of r.oneInFlightSparse) {
      expect(x.gapMs).toBe(20);
      expect(x.p50Us).toBeGreaterThan(0);
      expect(Object.keys(x.statuses)).toEqual(['200']);
    }
    expect(stdout).toContain('20 ms apart');
    for (const x of r.openLoop) {
      expect(x.errors).toBe(0);
      expect(x.sent).toBe(50);
    }
    for (const x of r.maxRps) {
      expect(x.rps).toBeGreaterThan(0);
      expect(x.non2xx).toBe(0);
      expect(x.cpuUsPerReq).toBeGreaterThan(0);
    }
    for (const x of r.streaming) {
      expect(x.ttftP50Us).toBeGreaterThan(0);
      // The upstream paces chunks 2 ms apart; a pass-through must keep them apart, not batch them.
      expect(x.gapP50Us).toBeGreaterThan(1000);
    }
    expect(r.rss[0].idleMB).toBeGreaterThan(0);
    // The A/A control: a second bare process beside the first at one in flight and for streams, read against it.
    expect(r.oneInFlight.map((x: { name: string }) => x.name)).toEqual(['direct', 'undici-bare', CONTROL]);
    expect(r.streaming.map((x: { name: string }) => x.name)).toEqual(['direct', 'undici-bare', CONTROL]);
    expect(r.againstBare.map((x: { name: string }) => x.name)).toEqual([CONTROL]);
    const [aa] = r.againstBare;
    const [, bare, second] = r.streaming;
    expect(aa.ttftP99Us).toBeCloseTo(second.ttftP99Us - bare.ttftP99Us, 0);
    expect(stdout).toContain('as the noise floor');
    // Ten streams per target in the short run: too few pairs for an interval, and it says so rather than guess.
    expect(aa.ttftP99CiUs).toBeNull();
    // 100 requests per target at one in flight are enough for one: a finite, ordered interval.
    for (const k of ['p50CiUs', 'p99CiUs']) {
      const [lo, hi] = aa[k];
      expect(Number.isFinite(lo) && Number.isFinite(hi), k).toBe(true);
      expect(lo, k).toBeLessThanOrEqual(hi);
    }
  });

  /** A long run's short form (2 rounds × 20, no lb-server) and what both kinds share: rounds, rows, the control. */
  const runLong = async (kind: 'streams' | 'one-in-flight') => {
    const { stdout, result: r } = await runShort(
      'run.mjs',
      [`--only=${kind}`, '--no-server'],
      `${kind}-short.json`,
      55_000,
    );
    expect(r.kind).toBe(kind);
    expect(r.n).toBe(40);
    // Two rounds of fresh proxies, each read against its own bare.
    expect(r.rounds).toHaveLength(2);
    for (const round of r.rounds) expect(round.map((x: { name: string }) => x.name)).toEqual([CONTROL]);
    expect(stdout).toContain('round 2/2');
    expect(r.rows.map((x: { name: string }) => x.name)).toEqual(['direct', 'undici-bare', CONTROL]);
    const [aa] = r.againstBare;
    expect(aa.name).toBe(CONTROL);
    return { stdout, r, aa };
  };

  /** 40 pairs (two rounds pooled) are enough for an interval: finite and ordered. */
  const expectIntervals = (aa: Record<string, [number, number]>, keys: string[]) => {
    for (const k of keys) {
      const [lo, hi] = aa[k];
      expect(Number.isFinite(lo) && Number.isFinite(hi), k).toBe(true);
      expect(lo, k).toBeLessThanOrEqual(hi);
    }
  };

  it('--only=streams: the streams alone, read against bare with intervals', { timeout: 60_000 }, async () => {
    const { stdout, r, aa } = await runLong('streams');
    for (const x of r.rows) {
      expect(x.ttftP50Us).toBeGreaterThan(0);
      expect(x.gapP50Us).toBeGreaterThan(1000);
    }
    // No one-in-flight measurement here: its columns are absent, not zero.
    expect(aa.p50Us).toBeNull();
    expect(aa.ttftP50Us).toBeCloseTo(r.rows[2].ttftP50Us - r.rows[1].ttftP50Us, 0);
    expectIntervals(aa, ['ttftP50CiUs', 'ttftP99CiUs']);
    expect(stdout).toContain('ttftP99 95% CI');
    expect(stdout).not.toContain('p50 95% CI');
  });

  it('--only=one-in-flight: plain requests alone, pooled over rounds', { timeout: 60_000 }, async () => {
    const { stdout, r, aa } = await runLong('one-in-flight');
    // Every request of both rounds answered, and counted once.
    for (const x of r.rows) expect(x.statuses).toEqual({ 200: 40 });
    expect(aa.p99Us).toBeCloseTo(r.rows[2].p99Us - r.rows[1].p99Us, 0);
    expect(aa.ttftP50Us).toBeNull();
    expectIntervals(aa, ['p50CiUs', 'p99CiUs']);
    expect(stdout).toContain('p99 95% CI');
    expect(stdout).not.toContain('ttftP50');
  });
});
