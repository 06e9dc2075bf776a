import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gcWithin } from '../lib/stages.mjs';
import { SERVER_CLI as cli, runShort } from './run-short.js';

describe('gcWithin', () => {
  it('counts only the part of each collection inside the window', () => {
    const gcs = [
      [0, 10],
      [95, 105],
      [120, 130],
      [300, 400],
    ];
    // 95–105 overlaps from 100; 120–130 whole; 300–400 is after the window.
    expect(gcWithin(gcs, 100, 200)).toBe(15);
    expect(gcWithin(gcs, 10, 95)).toBe(0);
    expect(gcWithin([], 0, 1e9)).toBe(0);
  });
});

describe('stream TTFT by stage (short)', () => {
  it('joins every proxied stream with the upstream record of it and times each stage', {
    timeout: 60_000,
  }, async () => {
    expect(existsSync(cli), 'packages/server/dist/cli.js: build first (pnpm build)').toBe(true);
    const { stdout, result: r } = await runShort('run.mjs', ['--only=stages'], 'stages-short.json', 55_000);
    expect(stdout).toContain('# Stream TTFT by stage');
    expect(r.rows.map((x: { name: string }) => x.name)).toEqual(['direct', 'undici-bare', 'lb-server']);
    for (const row of r.rows.slice(1)) {
      // One upstream request per proxied stream, found by the monotonic clock the processes share.
      expect(row.joined).toBe(r.n);
      expect(row.stages).toHaveLength(8);
      for (const s of row.stages) {
        expect(s.p50Us, s.stage).toBeGreaterThan(0);
        expect(s.p99Us, s.stage).toBeGreaterThanOrEqual(s.p50Us);
      }
      // The stages after the write happen in order: the upstream answers before the proxy reads its answer.
      const [, , , reached, answered, woke, parsed] = row.stages;
      expect(reached.p50Us + answered.p50Us).toBeLessThan(row.ttftP50Us);
      expect(woke.p50Us + parsed.p50Us).toBeLessThan(row.ttftP50Us);
      expect(row.slowest.every((s: { medianUs: number }) => Number.isFinite(s.medianUs))).toBe(true);
      // Its own collections were recorded, and a stream overlapping one is among those counted.
      expect(row.gcs).toBeGreaterThanOrEqual(0);
      expect(row.inGc).toBeLessThanOrEqual(row.joined);
      expect(row.slowestInGc).toBeLessThanOrEqual(row.slowest.length ? Math.ceil(row.joined / 100) : 0);
    }
  });
});
