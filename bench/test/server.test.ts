import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVER_CLI as cli, runShort } from './run-short.js';

describe('chaos through lb-server (short)', () => {
  it('fails over a 5xx burst and a revoked key without losing a request', { timeout: 60_000 }, async () => {
    expect(existsSync(cli), 'packages/server/dist/cli.js: build first (pnpm build)').toBe(true);
    const { result: r } = await runShort(
      'chaos.mjs',
      ['--target=lb-server', '--only=5xx-burst,key-revoked', '--seconds=1.2'],
      'chaos-short.json',
      55_000,
    );
    expect(r.target).toBe('lb-server');
    for (const x of r.rows) {
      expect(x.faultyAttempts, x.scenario).toBeGreaterThan(0);
      expect(x.lost, x.scenario).toBe(0);
      expect(x.successPct, x.scenario).toBe(100);
      expect(x.overDeadline, x.scenario).toBe(0);
    }
    // A revoked key is retired: after the first 401s, it gets no more traffic for the rest of the run.
    const revoked = r.rows[1];
    expect(revoked.detectMs).not.toBeNull();
    expect(revoked.faultyAttempts).toBeLessThan(10);
  });

  it('the fleet: four replicas meet a dead endpoint, with breakers per replica and shared over Redis', {
    timeout: 90_000,
  }, async () => {
    const { result: r } = await runShort(
      'chaos.mjs',
      ['--target=lb-server', '--only=fleet'],
      'chaos-short.json',
      85_000,
    );
    expect(r.rows).toEqual([]);
    expect(r.fleet.rows.map((x: { breakers: string }) => x.breakers)).toEqual([
      'per replica',
      'shared (Redis)',
    ]);
    for (const x of r.fleet.rows) {
      // Every request answered (failed over to B); A met at least the failures that open one circuit.
      expect(x.successPct, x.breakers).toBe(100);
      expect(x.attemptsOnDown, x.breakers).toBeGreaterThanOrEqual(r.fleet.threshold);
      expect(x.whileOpening + x.probes, x.breakers).toBe(x.attemptsOnDown);
    }
  });
});
