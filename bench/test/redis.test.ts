import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runRedisCost } from '../lib/redis-cost.mjs';

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
