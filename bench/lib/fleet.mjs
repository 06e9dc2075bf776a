import { Pool } from 'undici';
import { atRate, chatStatus } from './harness.mjs';
import { startLbServerWithConfig } from './proxy.mjs';
import { startRedisServer } from './redis-cost.mjs';
import { round } from './stats.mjs';
import { startUpstream } from './upstream.mjs';

/**
 * @param {{ replicas?: number, threshold?: number, rate?: number, durationMs?: number, log?: (s: string) => void }} [opts]
 */
export async function runFleetOutage(opts = {}) {
  const replicas = opts.replicas ?? 4;
  const threshold = opts.threshold ?? 5;
  const rate = opts.rate ?? 100;
  const durationMs = opts.durationMs ?? 3000;
  // Five open periods in a run: the probes after the first one are counted apart.
  const halfOpenAfterMs = Math.round(durationMs / 5);
  const redis = await startRedisServer();
  try {
    const rows = [];
    for (const shared of [false, true]) {
      opts.log?.(`  … ${replicas} replicas, breakers ${shared ? 'shared over Redis' : 'per replica'}`);
      rows.push(
        await once({
          replicas,
          threshold,
          rate,
          durationMs,
          halfOpenAfterMs,
          redisUrl: shared ? redis.url : undefined,
        }),
      );
    }
    return { replicas, threshold, rate, durationMs, halfOpenAfterMs, rows };
  } finally {
    redis.stop();
  }
}

async function once({ replicas, threshold, rate, durationMs, halfOpenAfterMs, redisUrl }) {
  const clock = { t0: 0 };
  const a = await startUpstream({
    name: 'A',
    record: true,
    behaviour: () => (clock.t0 === 0 ? undefined : { type: 'status', status: 500 }),
  });
  const b = await startUpstream({ name: 'B', record: true });
  const config = {
    strategy: 'priority',
    max_retries: 2,
    backoff: { initial: 10, max: 50 },
    breaker: { enabled: true, threshold, half_open_after: halfOpenAfterMs },
    health_check: { enabled: false },
    server: { log_level: 'warn', request_log: { enabled: false } },
    endpoints: [a, b].map((u, i) => ({
      name: 'AB'[i],
      base_url: u.url,
      api_key: `sk-fleet-${i}-0123456789abcdef`,
      priority: i + 1,
    })),
  };
  const procs = [];
  const pools = [];
  try {
    for (let i = 0; i < replicas; i++) {
      const p = await startLbServerWithConfig(config, {
        extraEnv: redisUrl ? { LB_REDIS_URL: redisUrl } : {},
      });
      procs.push(p);
      pools.push(new Pool(`http://127.0.0.1:${p.port}`, { connections: 32 }));
    }
    // Half the requests to replica 0, the others in turn over the rest.
    const send = (i) =>
      chatStatus(
        pools[replicas === 1 || i % 2 === 0 ? 0 : 1 + ((i >> 1) % (replicas - 1))],
        'sk-fleet-client',
      );
    // Warm every replica (connections, and code V8 has optimised) while A is still up: these succeed.
    for (let i = 0; i < replicas * 100; i++) await send(i);
    a.stats.log.length = 0;
    b.stats.log.length = 0;
    clock.t0 = Date.now();
    let ok = 0;
    const total = await atRate({ rate, durationMs, tickMs: 2 }, (i) =>
      send(i).then((s) => {
        if (s === 200) ok++;
      }),
    );
    const hitsA = a.stats.log.filter((x) => x.post);
    const hitsB = b.stats.log.filter((x) => x.post);
    // Attempts on A once every circuit had its first open period: the half-open probes.
    const probes = hitsA.filter((x) => x.at - clock.t0 >= halfOpenAfterMs * 0.9).length;
    return {
      breakers: redisUrl ? 'shared (Redis)' : 'per replica',
      replicas,
      requests: total,
      successPct: round((ok / total) * 100, 2),
      attemptsOnDown: hitsA.length,
      whileOpening: hitsA.length - probes,
      probes,
      attemptsPerRequest: round((hitsA.length + hitsB.length) / total, 3),
    };
  } finally {
    for (const p of pools) await p.close();
    for (const p of procs) await p.stop();
    await a.close();
    await b.close();
  }
}
