// What sharing rate-limit state in Redis costs lb-server: max RPS and CPU per request with endpoint budgets in
// memory, in Redis, and in Redis with per-client windows too (limits set high enough never to refuse), against one
// local redis-server on the client core. Fresh servers every round (`maxRpsRounds`).
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, layout, maxRpsRounds, spawnNode } from './harness.mjs';
import { ROOT, startLbServer } from './proxy.mjs';
import { median, round, sleep } from './stats.mjs';

/**
 * @param {{ rounds?: number, durationS?: number, log?: (s: string) => void }} [opts]
 * @returns {Promise<{ name: string, rps: number, cpuUsPerReq: number, addedCpuUs: number, non2xx: number }[]>}
 */
export async function runRedisCost(opts = {}) {
  const rounds = opts.rounds ?? 4;
  const durationS = opts.durationS ?? 5;
  const redis = await startRedisServer();
  const up = await spawnNode(join(ROOT, 'bench', 'lib', 'upstream.mjs'), [], { core: layout.clientCore });
  try {
    const u = `http://127.0.0.1:${up.port}/v1`;
    const budgets = { OPENAI_MAX_RPM_1: '1e9', OPENAI_MAX_RPM_2: '1e9', OPENAI_MAX_RPM_3: '1e9' };
    const clients = { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_REQUESTS: '1000000000' };
    const redisUrl = { LB_REDIS_URL: redis.url };
    const target = (name, extraEnv) => ({
      name,
      start: async () => {
        const p = await startLbServer([u, u, u], { extraEnv });
        return { url: `http://127.0.0.1:${p.port}/v1`, pid: p.pid, proc: p };
      },
    });
    const out = await maxRpsRounds(
      [
        target('budgets in memory', budgets),
        target('budgets in Redis', { ...budgets, ...redisUrl }),
        target('budgets + client windows in Redis', { ...budgets, ...clients, ...redisUrl }),
      ],
      { rounds, durationS, log: opts.log },
    );
    const base = median(out[0].runs.map((r) => r.cpuUsPerReq));
    return out.map((t) => {
      const cpu = median(t.runs.map((r) => r.cpuUsPerReq));
      return {
        name: t.name,
        rps: round(median(t.runs.map((r) => r.rps)), 0),
        cpuUsPerReq: round(cpu),
        addedCpuUs: round(cpu - base),
        non2xx: t.runs.reduce((a, r) => a + (r.non2xx || 0), 0),
      };
    });
  } finally {
    await up.stop();
    redis.stop();
  }
}

/**
 * A throwaway redis-server on 127.0.0.1 (no persistence), on the client core. Throws when it does not come up
 * (redis-server missing?).
 * @returns {Promise<{ port: number, url: string, stop: () => void }>}
 */
export async function startRedisServer() {
  const port = await freePort();
  const redis = spawn(
    layout.taskset ? 'taskset' : 'redis-server',
    [
      ...(layout.taskset ? ['-c', String(layout.clientCore), 'redis-server'] : []),
      ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    ],
    { stdio: 'ignore' },
  );
  try {
    await untilListening(port);
  } catch (e) {
    redis.kill();
    throw e;
  }
  return { port, url: `redis://127.0.0.1:${port}`, stop: () => redis.kill() };
}

/** Resolves once something accepts connections on 127.0.0.1:`port`; throws after 5 s (redis-server missing?). */
async function untilListening(port) {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(
    `redis-server did not start on port ${port} (is it installed? apt-get install redis-server)`,
  );
}
