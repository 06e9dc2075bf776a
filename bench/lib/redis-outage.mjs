// The issue-24 scenario at full length, with real processes: three lb-server replicas (the CLI) sharing one local
// redis-server and one endpoint at 10 requests/s (burst 10), 45 req/s offered round-robin over them (open loop).
// Phases: steady; Redis killed for 8 s and started again on its port; Redis stopped (SIGSTOP) for 6 s and let go;
// then 15 requests at once on each replica after an idle spell. Arrivals are counted on the upstream (in this
// process) by its own clock. Figures per phase: the combined rate served, client 5xx, the slowest answer, and how soon
// after Redis came back the endpoint served its budget again.
import { Pool } from 'undici';
import { chatStatus } from './harness.mjs';
import { startLbServerWithConfig } from './proxy.mjs';
import { startRedisServer, startRedisServerOn } from './redis-cost.mjs';
import { round, sleep } from './stats.mjs';
import { startUpstream } from './upstream.mjs';

/**
 * @param {{ limit?: number, offered?: number, steadyS?: number, killS?: number, stallS?: number, log?: (s: string) => void }} [opts]
 * @returns {Promise<{ phase: string, seconds: number, served: number, perS: number, ofLimit: number, client5xx: number, slowestMs: number, backWithinMs?: number }[]>}
 */
export async function runRedisOutage(opts = {}) {
  const limit = opts.limit ?? 10;
  const offered = opts.offered ?? 45;
  const steadyS = opts.steadyS ?? 5;
  const killS = opts.killS ?? 8;
  const stallS = opts.stallS ?? 6;
  const log = opts.log ?? (() => {});
  const arrivals = [];
  const up = await startUpstream({
    behaviour: (info) => {
      if (info.path.endsWith('/chat/completions')) arrivals.push(info.at);
      return undefined;
    },
  });
  let redis = await startRedisServer();
  const procs = [];
  const pools = [];
  /** @type {{ start: number, end: number, status: number }[]} */
  const shots = [];
  try {
    const config = {
      max_wait: '250ms',
      breaker: { enabled: false },
      server: { log_level: 'warn' },
      endpoints: [
        {
          name: 'E',
          base_url: `http://127.0.0.1:${up.port}/v1`,
          api_key: 'sk-outage-endpoint-0123456789abcdef',
          max_rps: limit,
        },
      ],
    };
    for (let i = 0; i < 3; i++) {
      const p = await startLbServerWithConfig(config, { extraEnv: { LB_REDIS_URL: redis.url } });
      procs.push(p);
      pools.push(new Pool(`http://127.0.0.1:${p.port}`, { connections: 64 }));
    }
    const send = (i) => {
      const start = Date.now();
      return chatStatus(pools[i % 3], 'sk-outage-client').then((status) => {
        shots.push({ start, end: Date.now(), status });
      });
    };
    const stores = async () =>
      Promise.all(
        procs.map(async (p) => {
          const h = await (await fetch(`http://127.0.0.1:${p.port}/health`)).json();
          return h.sharedStore;
        }),
      );
    const until = async (cond, what) => {
      for (let i = 0; i < 600; i++) {
        if (await cond()) return;
        await sleep(25);
      }
      throw new Error(`not within 15 s: ${what}`);
    };
    // (A build from before the degraded mode — LB_SERVER_CLI — reports only its connection: `status: 'ready'`.)
    const isUp = (s) => s.status === 'up' || s.status === 'ready';
    await until(async () => (await stores()).every((s) => isUp(s) && (s.replicas ?? 3) === 3), '3 replicas');

    // The load runs through every phase, open loop (a request every 1/offered s whatever the answers); the phases
    // are marked on the same clock as the arrivals.
    let n = 0;
    const timer = setInterval(() => send(n++), 1000 / offered);
    const marks = {};
    await sleep(2000);
    marks.steady = Date.now();
    await sleep(steadyS * 1000);
    marks.kill = Date.now();
    log(`steady ${steadyS} s done; killing Redis for ${killS} s`);
    redis.stop();
    await sleep(killS * 1000);
    marks.restart = Date.now();
    redis = await startRedisServerOn(redis.port);
    await until(async () => (await stores()).every(isUp), 'up after restart');
    await sleep(5000);
    marks.stall = Date.now();
    log(`stopping Redis (SIGSTOP) for ${stallS} s`);
    redis.pause();
    await sleep(stallS * 1000);
    redis.resume();
    marks.resume = Date.now();
    await sleep(5000);
    marks.end = Date.now();
    clearInterval(timer);
    await sleep(1000); // the last answers
    await sleep(2000); // idle: the budget refills whole
    marks.burst = Date.now();
    await Promise.all(Array.from({ length: 45 }, (_, i) => send(i)));
    marks.burstEnd = Date.now();

    const count = (from, to) => arrivals.filter((t) => t >= from && t < to).length;
    const phase = (name, from, to, extra = {}) => {
      const s = (to - from) / 1000;
      const served = count(from, to);
      const inPhase = shots.filter((x) => x.start >= from && x.start < to);
      return {
        phase: name,
        seconds: round(s, 1),
        served,
        perS: round(served / s, 2),
        ofLimit: round(served / s / limit, 2),
        client5xx: inPhase.filter((x) => x.status >= 500 || x.status === 0).length,
        slowestMs: inPhase.length ? Math.max(...inPhase.map((x) => x.end - x.start)) : 0,
        ...extra,
      };
    };
    /** First time after `from` at which the last second served at least 80 % of the limit. */
    const backWithin = (from) => {
      const after = arrivals.filter((t) => t >= from).sort((a, b) => a - b);
      for (let i = 0; i < after.length; i++) {
        const windowStart = after[i] - 1000;
        if (windowStart < from) continue;
        if (count(windowStart, after[i] + 1) >= 0.8 * limit) return after[i] - from;
      }
      return undefined;
    };
    const burstServed = count(marks.burst, marks.burstEnd + 1);
    return [
      phase('steady', marks.steady, marks.kill),
      phase(`Redis killed (${killS} s)`, marks.kill, marks.restart, {
        backWithinMs: backWithin(marks.restart),
      }),
      phase(`Redis stopped (${stallS} s)`, marks.stall, marks.resume, {
        backWithinMs: backWithin(marks.resume),
      }),
      phase('after', marks.resume, marks.end),
      {
        phase: '15 at once × 3 replicas',
        seconds: round((marks.burstEnd - marks.burst) / 1000, 2),
        served: burstServed,
        perS: round(burstServed / ((marks.burstEnd - marks.burst) / 1000), 2),
        // the burst is 10: `served` against it (plus what refilled in `seconds`)
        ofLimit: round(burstServed / limit, 2),
        client5xx: shots.filter((x) => x.start >= marks.burst && x.status >= 500).length,
        slowestMs: Math.max(...shots.filter((x) => x.start >= marks.burst).map((x) => x.end - x.start)),
      },
    ];
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    for (const p of procs) await p.stop();
    redis.stop();
    await up.close();
  }
}
