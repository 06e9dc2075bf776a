import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pacedTimeout } from '@lb/testing';

/** The BUILT lb-server: black-box tests configure it through the environment and drive it with the official SDK. */
export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** The last measured start of the CLI, ms (see {@link measureCliStart}); undefined before. */
let startMs: number | undefined;

/**
 * The machine's pace for spawned servers: how long the built CLI takes now to start and exit on an empty config
 * (node's start, the CLI's modules, its config reading), ms; the slowest of three. A loaded CI machine takes
 * seconds where an idle one takes ~150 ms: tests derive their timeouts from this instead of vitest's fixed 5 s.
 */
export async function measureCliStart(): Promise<number> {
  if (!existsSync(CLI)) throw new Error(`build @lb/server first: ${CLI} is missing`);
  let slowest = 0;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const child = spawn(process.execPath, [CLI], { env: { PATH: process.env.PATH ?? '' }, stdio: 'ignore' });
    await new Promise((r) => child.on('exit', r));
    slowest = Math.max(slowest, performance.now() - t);
  }
  startMs = slowest;
  return slowest;
}

/** A time limit for work worth `starts` CLI starts at the measured pace (see `pacedTimeout` in @lb/testing). */
export function cliTimeout(starts: number, floorMs = 5_000): number {
  return pacedTimeout(startMs ?? 2_500, starts, floorMs);
}

/** Resolves when the process's output (stdout and stderr) matches `re`: an event, not a poll. */
export function outputMatches(p: Proc, re: RegExp): Promise<void> {
  if (re.test(p.out())) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (!re.test(p.out())) return;
      p.child.stdout!.off('data', check);
      p.child.stderr!.off('data', check);
      resolve();
    };
    // `out` is appended by listeners added first, so it is up to date when these run.
    p.child.stdout!.on('data', check);
    p.child.stderr!.on('data', check);
  });
}

export interface Proc {
  child: ChildProcess;
  url: string;
  out: () => string;
  exit: Promise<number | null>;
}

/** Starts the built CLI on a free port and resolves once it prints its "listening on" line. */
export async function spawnServer(env: Record<string, string>, args: string[] = []): Promise<Proc> {
  if (!existsSync(CLI)) throw new Error(`build @lb/server first: ${CLI} is missing`);
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', ...env },
    cwd: tmpdir(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const limit = cliTimeout(4, 10_000);
    const t = setTimeout(() => reject(new Error(`lb-server did not start in ${limit} ms:\n${out}`)), limit);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        child.stdout!.off('data', check);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', () => reject(new Error(`lb-server exited:\n${out}`)));
  });
  return { child, url, out: () => out, exit };
}

/** Runs the built CLI to its exit, with only `PATH` and `env` in its environment: its exit code and all it printed. */
export function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    cwd: tmpdir(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return new Promise((r) => child.on('exit', (code) => r({ code, out })));
}
