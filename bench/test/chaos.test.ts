import { describe, expect, it } from 'vitest';
import { runShort } from './run-short.js';

describe('chaos suite (short, in-process router + breaker)', () => {
  it('loses no request while one endpoint of three can serve, and none waits past its deadline', {
    timeout: 300_000,
  }, async () => {
    const { result: r } = await runShort(
      'chaos.mjs',
      ['--target=core', '--only=5xx-burst,connection-reset,two-down,mid-stream-drop', '--seconds=1.2'],
      'chaos-short.json',
      // Only a hang guard: a short run stretches itself to the machine's pace (up to 10x).
      290_000,
    );
    expect(r.target).toBe('core');
    expect(r.rows.map((x: { scenario: string }) => x.scenario)).toEqual([
      '5xx-burst',
      'connection-reset',
      'two-down',
      'mid-stream-drop',
    ]);
    for (const x of r.rows) {
      for (const k of [
        'successPct',
        'lost',
        'attemptsPerRequest',
        'p99Ms',
        'overDeadline',
        'detectMs',
        'recoverMs',
      ]) {
        expect(x, `${x.scenario}.${k}`).toHaveProperty(k);
      }
      expect(x.requests, x.scenario).toBe(120);
      // The fault really happened, and the router really retried (a stream broken mid-way is not retried).
      expect(x.faultyAttempts, x.scenario).toBeGreaterThan(0);
      if (x.scenario !== 'mid-stream-drop') expect(x.attemptsPerRequest, x.scenario).toBeGreaterThan(1);
      expect(x.lost, x.scenario).toBe(0);
      expect(x.overDeadline, x.scenario).toBe(0);
    }
    const burst = r.rows[0];
    expect(burst.successPct, JSON.stringify(burst.failures)).toBe(100);
    expect(burst.breaker).toBe(true);
    // A broken stream after its first byte cannot be failed over; it is counted apart, never as success.
    const drop = r.rows[3];
    expect(drop.brokenStreams).toBeGreaterThan(0);
    expect(drop.ok + drop.brokenStreams).toBe(drop.requests);
  });
});

describe('chaos suite (short, the openai SDK through @lb/openai-adapter)', () => {
  it('fails over a 5xx burst, and holds back the streams of an endpoint that broke one', {
    timeout: 300_000,
  }, async () => {
    const { result: r } = await runShort(
      'chaos.mjs',
      ['--target=adapter', '--only=5xx-burst,mid-stream-drop,mid-stream-error', '--seconds=1.5'],
      'chaos-short.json',
      // Only a hang guard: a short run stretches itself to the machine's pace (up to 10x).
      290_000,
    );
    expect(r.target).toBe('adapter');
    const [burst, ...mid] = r.rows;
    expect(burst.scenario).toBe('5xx-burst');
    expect(burst.successPct, JSON.stringify(burst.failures)).toBe(100);
    expect(burst.attemptsPerRequest).toBeGreaterThan(1);
    for (const x of r.rows) {
      expect(x.faultyAttempts, x.scenario).toBeGreaterThan(0);
      expect(x.lost, x.scenario).toBe(0);
      expect(x.overDeadline, x.scenario).toBe(0);
    }
    // As through lb-server: the first break reaches a client, the endpoint's later breaks fail over unseen.
    expect(mid.map((x: { scenario: string }) => x.scenario)).toEqual(['mid-stream-drop', 'mid-stream-error']);
    for (const x of mid) {
      expect(x.brokenStreams, x.scenario).toBeGreaterThanOrEqual(1);
      expect(x.breaksPastProbation, x.scenario).toBe(0);
      expect(x.brokenStreams, x.scenario).toBeLessThan(x.faultyAttempts);
      expect(x.attemptsPerRequest, x.scenario).toBeGreaterThan(1);
      expect(x.ok + x.brokenStreams, x.scenario).toBe(x.requests);
    }
  });
});
