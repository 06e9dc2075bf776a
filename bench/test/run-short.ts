import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = join(import.meta.dirname, '..');

/** lb-server's built CLI: the suites that drive lb-server need `pnpm build` first. */
export const SERVER_CLI = join(here, '..', 'packages', 'server', 'dist', 'cli.js');

/**
 * Runs `node bench/<script> --short <args>` with a fresh `--out` directory; returns what it printed and the JSON it
 * wrote to `<file>` there (`proxy-short.json`, `chaos-short.json`, `fuzz-short.json`…).
 */
export async function runShort(
  script: 'run.mjs' | 'chaos.mjs' | 'fuzz.mjs',
  args: string[],
  file: string,
  timeoutMs: number,
): Promise<{ stdout: string; result: any }> {
  const out = mkdtempSync(join(tmpdir(), 'lb-bench-'));
  const { stdout } = await run(process.execPath, [join(here, script), '--short', ...args, `--out=${out}`], {
    timeout: timeoutMs,
  });
  return { stdout, result: JSON.parse(readFileSync(join(out, file), 'utf8')) };
}
