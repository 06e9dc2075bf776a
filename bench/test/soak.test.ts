import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVER_CLI as cli, runShort } from './run-short.js';

describe('soak (short)', () => {
  it('drives plain, streaming and failed-over requests through lb-server and reads its RSS after each slice', {
    timeout: 60_000,
  }, async () => {
    expect(existsSync(cli), 'packages/server/dist/cli.js: build first (pnpm build)').toBe(true);
    const { stdout, result: r } = await runShort('run.mjs', ['--only=soak'], 'soak-short.json', 55_000);
    expect(stdout).toContain('# Soak');
    expect(r.slices.length).toBeGreaterThanOrEqual(4);
    expect(r.slices.map((s: { stream: boolean }) => s.stream).slice(0, 2)).toEqual([false, true]);
    expect(r.requests).toBe(r.slices.at(-1).requests);
    expect(r.requests).toBeGreaterThanOrEqual(2_000);
    // One endpoint in three answers 500: every such attempt fails over, and the client never sees it.
    expect(r.non2xx).toBe(0);
    for (const s of r.slices) expect(s.rssMB).toBeGreaterThan(0);
    expect(r.afterIdleMB).toBeGreaterThan(0);
    expect(Number.isFinite(r.growthSecondHalfMBPer100k)).toBe(true);
  });
});
