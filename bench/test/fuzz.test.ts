import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fuzzCase } from '../lib/fuzz.mjs';
import { SERVER_CLI as cli, runShort } from './run-short.js';

describe('black-box fuzz of lb-server (short)', () => {
  it('mutated raw requests: the process stays up, ordinary requests keep succeeding, memory stays bounded', {
    // Only a hang guard: the run bounds itself (3,000 requests, 120 s at most).
    timeout: 300_000,
  }, async () => {
    expect(existsSync(cli), 'packages/server/dist/cli.js: build first (pnpm build)').toBe(true);
    const { stdout, result: r } = await runShort('fuzz.mjs', ['--count=1500'], 'fuzz-short.json', 290_000);
    expect(stdout).toContain('# Fuzz');
    expect(r.processUp).toBe(true);
    expect(r.exited).toBeNull();
    expect(r.requests).toBeGreaterThan(0);
    expect(r.ordinaryChecks.failed).toBe(0);
    expect(r.ordinaryChecks.ok).toBeGreaterThan(50); // the warm-up's 50, then one per 500 mutated requests
    expect(r.finalOrdinaryOk).toBe(true);
    // Bad input gets a clear 4xx: most cases are answered, and the 4xx dominate the 5xx by far.
    const n = (pred: (k: string) => boolean) =>
      Object.entries(r.outcomes as Record<string, number>).reduce((a, [k, v]) => a + (pred(k) ? v : 0), 0);
    const fourxx = n((k) => /^4\d\d$/.test(k));
    expect(fourxx).toBeGreaterThan(r.requests / 4);
    expect(n((k) => /^5\d\d$/.test(k))).toBeLessThan(fourxx / 20);
    // Bounded, not flat-to-the-megabyte: a short run still warms up (modules, pools, JIT).
    expect(r.rssEndMB).toBeLessThan(r.rssStartMB + 256);
  });

  it('generates the same cases for the same seed, and every kind of case', async () => {
    const { rng } = await import('../lib/fuzz.mjs');
    const a = rng(42);
    const b = rng(42);
    const cases = Array.from({ length: 300 }, () => fuzzCase(a));
    expect(Array.from({ length: 300 }, () => fuzzCase(b).bytes.toString('latin1'))).toEqual(
      cases.map((c) => c.bytes.toString('latin1')),
    );
    const text = cases.map((c) => c.bytes.toString('latin1'));
    expect(cases.some((c) => c.mode === 'abort')).toBe(true);
    for (const marker of ['transfer-encoding: chunked', '..', 'HTTP/1.0', 'content-length: -1'])
      expect(
        text.some((t) => t.includes(marker)),
        marker,
      ).toBe(true);
  });
});
