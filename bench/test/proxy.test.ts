import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const here = join(import.meta.dirname, '..');

describe('proxy benchmark (smoke: direct and the bare undici floor)', () => {
  it('writes proxy-short.json with every field and prints the tables', { timeout: 60_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'lb-bench-'));
    const { stdout } = await run(
      process.execPath,
      [join(here, 'run.mjs'), '--short', '--only=proxy', '--no-server', '--no-portkey', `--out=${out}`],
      { timeout: 55_000 },
    );
    expect(stdout).toContain('Max throughput at concurrency 32');
    const r = JSON.parse(readFileSync(join(out, 'proxy-short.json'), 'utf8'));
    for (const k of [
      'at',
      'node',
      'layout',
      'targets',
      'oneInFlight',
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
  });
});
