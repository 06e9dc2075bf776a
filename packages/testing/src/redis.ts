import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';

/** A real `redis-server` of this test run, on 127.0.0.1, with nothing persisted. */
export interface TestRedis {
  port: number;
  url: string;
  /** The redis-server process id. */
  pid: number;
  /** Stalls it (SIGSTOP): connections stay open, nothing answers, as a Redis stuck on a slow command or a swap. */
  pause(): void;
  /** Lets a paused one go on (SIGCONT): it answers what queued meanwhile. */
  resume(): void;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts Debian's `redis-server` (installed by `.ci/run`) on a free loopback port (or `port`, to bring one back
 * where it was); resolves once it accepts connections. Fails with a clear message when the binary is missing: tests that need shared state never skip.
 */
export async function startRedis(options: { port?: number } = {}): Promise<TestRedis> {
  try {
    execFileSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' });
  } catch {
    throw new Error('redis-server is not installed: apt-get install redis-server (.ci/run does it)');
  }
  const port = options.port ?? (await freePort());
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'yes',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10_000);
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('Ready to accept connections')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${out}`)));
  });
  child.stdout!.resume();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid as number,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        // A paused one must go on to hear SIGTERM.
        child.kill('SIGCONT');
        child.kill('SIGTERM');
      }),
  };
}
