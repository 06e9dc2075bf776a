import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDegradedSwitch, runRedisCost, runRedisOneInFlight } from '../lib/redis-cost.mjs';
import { runRedisOutage } from '../lib/redis-outage.mjs';

const cli = join(import.meta.dirname, '..', '..', 'packages', 'server', 'dist', 'cli.js');

describe('rate-limit state in Redis (smoke)', () => {
  it('loads lb-server with its budgets in memory, in Redis, and with client windows in Redis: no request refused', {
    timeout: 60_000,
  }, async () => {
    expect(existsSync(cli), 'packages/server/dist/cli.js: build first (pnpm build)').toBe(true);
    const rows = await runRedisCost({ rounds: 1, durationS: 1 });
    expect(rows.map((r) => r.name)).toEqual([
      'budgets in memory',
      'budgets in Redis',
      'budgets + client windows in Redis',
    ]);
    for (const r of rows) {
      expect(r.rps, r.name).toBeGreaterThan(0);
      expect(r.non2xx, r.name).toBe(0);
      expect(r.cpuUsPerReq, r.name).toBeGreaterThan(0);
    }
    expect(rows[0].addedCpuUs).toBe(0);
  });
});

describe('Redis stalls and outages (smoke)', () => {
  it('admission at one request in flight, budgets in memory and in Redis: every request answered', {
    timeout: 60_000,
  }, async () => {
    const rows = await runRedisOneInFlight({ n: 50, warmup: 10 });
    expect(rows.map((r) => r.name)).toEqual(['budgets in memory', 'budgets in Redis']);
    for (const r of rows) {
      expect(r.p50Us, r.name).toBeGreaterThan(0);
      expect(r.p99Us, r.name).toBeGreaterThanOrEqual(r.p50Us);
    }
    expect(rows[0].addedP50Us).toBe(0);
  });

  it('the degraded-mode switch: stalled, let go, killed, started again, each seen on /health', {
    timeout: 90_000,
  }, async () => {
    const rows = await runDegradedSwitch({ rounds: 1 });
    expect(rows.map((r) => r.event)).toEqual([
      'stalled (SIGSTOP) → degraded',
      'let go (SIGCONT) → up',
      'killed → degraded',
      'started again → up',
    ]);
    for (const r of rows) {
      expect(r.rounds, r.event).toBe(1);
      expect(r.medianMs, r.event).toBeGreaterThanOrEqual(0);
    }
  });
});

describe("issue 24's outage scenario (smoke, short phases)", () => {
  it('three lb-server processes through a Redis kill and a SIGSTOP: every phase measured, no client 5xx', {
    timeout: 120_000,
  }, async () => {
    const rows = await runRedisOutage({ steadyS: 1, killS: 2, stallS: 2 });
    expect(rows.map((r) => r.phase)).toEqual([
      'steady',
      'Redis killed (2 s)',
      'Redis stopped (2 s)',
      'after',
      '15 at once × 3 replicas',
    ]);
    for (const r of rows) {
      expect(r.client5xx, r.phase).toBe(0);
      expect(r.served, r.phase).toBeGreaterThan(0);
    }
  });
});
