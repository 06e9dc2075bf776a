import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

/** The BUILT lb-server: black-box tests configure it through the environment and drive it with the official SDK. */
export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

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
    const t = setTimeout(() => reject(new Error(`lb-server did not start:\n${out}`)), 10_000);
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
