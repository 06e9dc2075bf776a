import { describe, expect, it } from 'vitest';
import { runCli, spawnServer } from './cli-helpers.js';

// The demo reads PORT, HOST and LOG_LEVEL by @lb/config-env's table (the one reader of each), not a parser of its own.
describe('lb-server --demo and the environment', () => {
  it.each([['--demo'], ['--demo=auto']])(
    '%s: a bad PORT is named, as lb-server names it, and it exits 1',
    async (arg) => {
      const r = await runCli([arg], { PORT: 'eighty' });
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/PORT: .*"eighty"/);
      expect(r.out).not.toMatch(/listening on/);
    },
  );

  it('--demo takes PORT and HOST as lb-server does (trimmed)', async () => {
    const p = await spawnServer({ PORT: ' 0 ', HOST: ' 127.0.0.1 ' }, ['--demo']);
    try {
      expect(p.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${p.url}/v1/models`)).status).toBe(200);
    } finally {
      p.child.kill('SIGTERM');
      expect(await p.exit).toBe(0);
    }
  });
});
