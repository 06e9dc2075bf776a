// What sharing rate-limit state in Redis costs lb-server: max RPS and CPU per request with endpoint budgets in
// memory, in Redis, and in Redis with per-client windows too (limits set high enough never to refuse), against one
// local redis-server on the client core. Fresh servers every round (`maxRpsRounds`).
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, layout, maxRpsRounds, oneInFlight, spawnNode } from './harness.mjs';
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
  return startRedisServerOn(await freePort());
}

/** {@link startRedisServer} on a given port (to bring one back where it was). */
export async function startRedisServerOn(port) {
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
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    // taskset execs redis-server: the pid is the server's.
    pause: () => redis.kill('SIGSTOP'),
    resume: () => redis.kill('SIGCONT'),
    stop: () => {
      redis.kill('SIGCONT');
      redis.kill();
    },
  };
}

/**
 * Admission at one request in flight: lb-server with the same (never reached) budgets in memory and in Redis,
 * interleaved request by request (`oneInFlight`), 3 endpoints each.
 * @param {{ n?: number, warmup?: number }} [opts]
 * @returns {Promise<{ name: string, p50Us: number, p99Us: number, addedP50Us: number, addedP99Us: number }[]>}
 */
export async function runRedisOneInFlight(opts = {}) {
  const redis = await startRedisServer();
  const up = await spawnNode(join(ROOT, 'bench', 'lib', 'upstream.mjs'), [], { core: layout.clientCore });
  const procs = [];
  try {
    const u = `http://127.0.0.1:${up.port}/v1`;
    const budgets = { OPENAI_MAX_RPM_1: '1e9', OPENAI_MAX_RPM_2: '1e9', OPENAI_MAX_RPM_3: '1e9' };
    const start = async (name, extraEnv) => {
      const p = await startLbServer([u, u, u], { extraEnv });
      procs.push(p);
      return { name, url: `http://127.0.0.1:${p.port}/v1` };
    };
    const targets = [
      await start('budgets in memory', budgets),
      await start('budgets in Redis', { ...budgets, LB_REDIS_URL: redis.url }),
    ];
    const rows = await oneInFlight(targets, { n: opts.n ?? 2000, warmup: opts.warmup ?? 300 });
    return rows.map((r) => ({
      name: r.name,
      p50Us: r.p50Us,
      p99Us: r.p99Us,
      addedP50Us: round(r.p50Us - rows[0].p50Us),
      addedP99Us: round(r.p99Us - rows[0].p99Us),
    }));
  } finally {
    for (const p of procs) await p.stop();
    await up.stop();
    redis.stop();
  }
}

/**
 * How fast a replica switches to its degraded share and back: lb-server with `LB_REDIS_URL` (default command
 * timeout, 100 ms) serving a request every 5 ms, its `/health` read every 5 ms; Redis stalled (SIGSTOP), let go,
 * killed and started again on its port. Times from the signal to the first `/health` that shows the new state.
 * @param {{ rounds?: number, log?: (s: string) => void }} [opts]
 * @returns {Promise<{ event: string, medianMs: number, maxMs: number, rounds: number }[]>}
 */
export async function runDegradedSwitch(opts = {}) {
  const rounds = opts.rounds ?? 3;
  let redis = await startRedisServer();
  const up = await spawnNode(join(ROOT, 'bench', 'lib', 'upstream.mjs'), [], { core: layout.clientCore });
  const times = { stall: [], resume: [], kill: [], restart: [] };
  let lb;
  let traffic;
  try {
    const u = `http://127.0.0.1:${up.port}/v1`;
    lb = await startLbServer([u], { extraEnv: { OPENAI_MAX_RPS_1: '1000', LB_REDIS_URL: redis.url } });
    const base = `http://127.0.0.1:${lb.port}`;
    let running = true;
    traffic = (async () => {
      while (running) {
        await fetch(`${base}/v1/embeddings`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
          body: '{"model":"text-embedding-3-small","input":"x"}',
        })
          .then((r) => r.arrayBuffer())
          .catch(() => {});
        await sleep(5);
      }
    })();
    traffic.stop = () => {
      running = false;
    };
    const state = async () => {
      const h = await (await fetch(`${base}/health`)).json();
      return h.sharedStore?.status;
    };
    const until = async (want) => {
      const t0 = performance.now();
      while ((await state()) !== want) {
        if (performance.now() - t0 > 15_000) throw new Error(`lb-server not ${want} within 15 s`);
        await sleep(5);
      }
      return round(performance.now() - t0);
    };
    await until('up');
    for (let i = 0; i < rounds; i++) {
      await sleep(300);
      redis.pause();
      times.stall.push(await until('degraded'));
      await sleep(300);
      redis.resume();
      times.resume.push(await until('up'));
      await sleep(300);
      redis.stop();
      times.kill.push(await until('degraded'));
      await sleep(300);
      const port = redis.port;
      const t0 = performance.now();
      redis = await startRedisServerOn(port);
      const started = performance.now() - t0;
      times.restart.push(round((await until('up')) + started));
      opts.log?.(
        `round ${i + 1}: ${times.stall.at(-1)} / ${times.resume.at(-1)} / ${times.kill.at(-1)} / ${times.restart.at(-1)} ms`,
      );
    }
  } finally {
    traffic?.stop();
    await traffic;
    await lb?.stop();
    await up.stop();
    redis.stop();
  }
  const row = (event, xs) => ({
    event,
    medianMs: round(median(xs)),
    maxMs: round(Math.max(...xs)),
    rounds: xs.length,
  });
  return [
    row('stalled (SIGSTOP) → degraded', times.stall),
    row('let go (SIGCONT) → up', times.resume),
    row('killed → degraded', times.kill),
    row('started again → up', times.restart),
  ];
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
