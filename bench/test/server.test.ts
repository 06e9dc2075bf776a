import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const here = join(import.meta.dirname, '..');
const cli = join(here, '..', 'packages', 'server', 'dist', 'cli.js');

describe('chaos through lb-server (short)', () => {
  it('fails over a 5xx burst and a revoked key without losing a request', { timeout: 60_000 }, async () => {
    expect(existsSync(cli), 'packages/server/dist/cli.js: build first (pnpm build)').toBe(true);
    const out = mkdtempSync(join(tmpdir(), 'lb-chaos-server-'));
    await run(
      process.execPath,
      [
        join(here, 'chaos.mjs'),
        '--short',
        '--target=lb-server',
        '--only=5xx-burst,key-revoked',
        '--seconds=1.2',
        `--out=${out}`,
      ],
      { timeout: 55_000 },
    );
    const r = JSON.parse(readFileSync(join(out, 'chaos-short.json'), 'utf8'));
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
    const out = mkdtempSync(join(tmpdir(), 'lb-chaos-fleet-'));
    await run(
      process.execPath,
      [join(here, 'chaos.mjs'), '--short', '--target=lb-server', '--only=fleet', `--out=${out}`],
      { timeout: 85_000 },
    );
    const r = JSON.parse(readFileSync(join(out, 'chaos-short.json'), 'utf8'));
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
