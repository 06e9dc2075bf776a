// For the examples' tests (examples/*/test): run an example as a user would (`node file`), against fake upstreams on 127.0.0.1.
import { spawn } from 'node:child_process';
import { type FakeUpstream, startFakeUpstream } from './fake-upstream.js';

/** Runs `node <file>` in `cwd` with `env` (and PATH), resolving with its exit code and everything it printed. */
export function runNode(
  cwd: string,
  file: string,
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [file], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

/** A dead upstream (every request: 500) and a live one, with the env the examples read them from. */
export async function deadAndLive(): Promise<{
  dead: FakeUpstream;
  live: FakeUpstream;
  env: Record<string, string>;
  close: () => Promise<void>;
}> {
  const dead = await startFakeUpstream({ name: 'dead', defaultBehaviour: { type: 'status', status: 500 } });
  const live = await startFakeUpstream({ name: 'live' });
  return {
    dead,
    live,
    env: {
      PRIMARY_URL: dead.url,
      OPENAI_API_KEY: 'sk-proj-example-primary-0000N0IA',
      BACKUP_URL: live.url,
      BACKUP_API_KEY: 'sk-proj-example-backup-1111N0IA',
    },
    close: async () => {
      await Promise.all([dead.close(), live.close()]);
    },
  };
}

export interface NodeProcess {
  /** What `ready` matched in its output. */
  match: RegExpExecArray;
  out: () => string;
  /** SIGTERM, then its exit code. */
  stop: () => Promise<number | null>;
}

/** Starts `node <args>` and resolves once its output matches `ready` (rejects if it exits first or within 15 s). */
export function startNode(
  cwd: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<NodeProcess> {
  const child = spawn(process.execPath, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready after 15 s:\n${out}`)), 15_000);
    const onData = (d: Buffer) => {
      out += d;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          match: m,
          out: () => out,
          stop: () => {
            child.kill('SIGTERM');
            return exit;
          },
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before it was ready:\n${out}`));
    });
  });
}
