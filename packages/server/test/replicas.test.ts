import { type FakeUpstream, fakeKey, startFakeUpstream, startRedis, type TestRedis } from '@lb/testing';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// Three lb-server replicas sharing one real redis-server and one endpoint limited to L requests/s, driven at 3 × L
// with the official SDK: they hold one budget in steady state, in a synchronized burst, while Redis is dead and while
// it is stalled (SIGSTOP), say so (logs, /health, metrics), and share 429 cooldowns at once. Rates are counted on
// the fake upstream's own arrival times; the bounds allow for the pace the machine achieved (a loaded CI is slow).

const L = 10; // OPENAI_MAX_RPS_1=10 (burst 10)
const upstreamKey = fakeKey('replicas-upstream');
const clientKey = 'lb-client-key-replicas-0123456789';

let redis: TestRedis;
let up: FakeUpstream;
const servers: LbServer[] = [];

interface Replica {
  server: LbServer;
  client: OpenAI;
  base: string;
  logs: string[];
}

async function replica(
  redisUrl: string,
  endpoints: { id: string; url: string; apiKey: string; priority?: number; limits?: object }[],
  breaker: { enabled: boolean; threshold?: number; halfOpenAfterMs?: number } = { enabled: false },
  perClient?: number,
): Promise<Replica> {
  const logs: string[] = [];
  const server = createServer({
    router: { endpoints, maxWaitMs: 250 },
    // A command timeout with room for a busy CI's event loop (a stall is still noticed within it).
    server: {
      port: 0,
      redisUrl,
      logLevel: 'info',
      redisCommandTimeoutMs: 250,
      ...(perClient
        ? {
            apiKeys: [clientKey],
            clientRateLimit: { enabled: true, requests: perClient, windowMs: 60_000 },
          }
        : {}),
    },
    breaker,
    logDestination: { write: (s: string) => logs.push(s) > 0 } as never,
  });
  servers.push(server);
  const base = await server.listen();
  const apiKey = perClient ? clientKey : 'x';
  return { server, client: new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 }), base, logs };
}

interface Shot {
  start: number;
  end: number;
  status: number;
}

const ask = async (c: OpenAI): Promise<Shot> => {
  const start = Date.now();
  const status = await c.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }).then(
    () => 200,
    (e: { status?: number }) => e.status ?? 0,
  );
  return { start, end: Date.now(), status };
};

/** Sends `perReplica` requests/s to each replica, each on its own, until stopped. */
function drive(rs: Replica[], perReplica: number): { stop(): Promise<Shot[]> } {
  const pending: Promise<Shot>[] = [];
  const timers = rs.map((r) => setInterval(() => pending.push(ask(r.client)), 1000 / perReplica));
  return {
    async stop() {
      for (const t of timers) clearInterval(t);
      return Promise.all(pending);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 25 ms for up to 15 s (a loaded machine is slow to connect). */
async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await sleep(25);
  }
  throw new Error(`not within 15 s: ${what}`);
}

/** Waits until `n` connections subscribe to `channel` (pub/sub keeps no messages: every replica must listen first). */
const subscribed = (url: string, channel: string, n: number) =>
  until(async () => {
    const probe = new Redis(url, { maxRetriesPerRequest: 0 });
    probe.on('error', () => {});
    try {
      const [, count] = (await probe.pubsub('NUMSUB', channel)) as [string, number];
      return count >= n;
    } finally {
      probe.disconnect();
    }
  }, `${n} subscribers of ${channel}`);

/** Upstream arrivals in [from, to) by its own clock. */
const arrivals = (from: number, to: number) => up.requests.filter((r) => r.at >= from && r.at < to).length;

async function health(r: Replica): Promise<{ status: string; sharedStore: Record<string, unknown> }> {
  const text = await (await fetch(`${r.base}/health`)).text();
  expect(text).not.toContain('redis://');
  return JSON.parse(text);
}

async function metric(r: Replica, name: string): Promise<number> {
  const text = await (await fetch(`${r.base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

const allStores = async (rs: Replica[], status: string) =>
  (await Promise.all(rs.map(health))).every((h) => h.sharedStore.status === status);

/** The store's transition lines of a replica's log, in order (`degraded` / `up`). */
const transitions = (r: Replica) =>
  r.logs
    .map((l) => JSON.parse(l) as { msg: string })
    .filter((l) => l.msg.startsWith('shared rate-limit store (Redis)'))
    .map((l) => (/unavailable/.test(l.msg) ? 'degraded' : 'up'));

beforeAll(async () => {
  redis = await startRedis();
  up = await startFakeUpstream({ name: 'up', acceptKeys: [upstreamKey] });
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(100)));
  await up?.close();
  await redis?.stop();
}, 60_000);

describe('three replicas hold one budget', { timeout: 90_000 }, () => {
  let rs: Replica[];
  beforeAll(async () => {
    const ep = [{ id: 'up', url: up.url, apiKey: upstreamKey, limits: { rps: L } }];
    rs = [];
    for (let i = 0; i < 3; i++) rs.push(await replica(redis.url, ep));
    // Each counts the others through their heartbeats in Redis.
    await until(
      async () => (await Promise.all(rs.map(health))).every((h) => h.sharedStore.replicas === 3),
      'three replicas counted',
    );
  }, 60_000);

  it('a synchronized burst after an idle spell sends the burst once, not three times', async () => {
    const t0 = Date.now();
    const shots = await Promise.all(rs.flatMap((r) => Array.from({ length: 15 }, () => ask(r.client))));
    const last = Math.max(...up.requests.filter((r) => r.at >= t0).map((r) => r.at));
    // The burst (10), 2 of slack, and what the budget refilled while the 45 requests were dispatched and waited.
    const refilled = Math.ceil((L * (last - t0)) / 1000);
    expect(arrivals(t0, last + 1)).toBeLessThanOrEqual(L + 2 + refilled);
    expect(shots.filter((s) => s.status >= 500)).toEqual([]);
    expect(shots.filter((s) => s.status === 200).length).toBeGreaterThanOrEqual(3);
  });

  it('steady state: 3 × the limit offered, the limit served (within 10 %)', async () => {
    const gen = drive(rs, L);
    await sleep(1500); // past the burst, into the steady pace
    const t0 = Date.now();
    await sleep(3000);
    const t1 = Date.now();
    const shots = await gen.stop();
    const offered = shots.filter((s) => s.start >= t0 && s.start < t1).length;
    const budget = (L * (t1 - t0)) / 1000;
    const served = arrivals(t0, t1);
    expect(offered).toBeGreaterThan(1.5 * budget); // the machine kept up: the budget, not the load, limits
    expect(served).toBeLessThanOrEqual(1.1 * budget + 1);
    expect(served).toBeGreaterThanOrEqual(0.9 * budget - 1);
    expect(shots.filter((s) => s.status >= 500)).toEqual([]);
    for (const r of rs) expect(await metric(r, 'lb_store_up')).toBe(1);
  });

  it('Redis dead: each replica keeps to its share (≤ 1.5 × the limit combined), no client 5xx; says so', async () => {
    const gen = drive(rs, L);
    await sleep(1000);
    const t0 = Date.now();
    await redis.stop();
    await until(() => allStores(rs, 'degraded'), 'every replica degraded');
    for (const r of rs) {
      const h = await health(r);
      // Never `healthy` with the store degraded (`unhealthy` when the budget is spent this moment).
      expect(h.status).not.toBe('healthy');
      expect(h.sharedStore).toMatchObject({ status: 'degraded', replicas: 3 });
      expect(await metric(r, 'lb_store_up')).toBe(0);
      expect(await metric(r, 'lb_store_degraded_share')).toBeCloseTo(1 / 3);
      expect(transitions(r).at(-1)).toBe('degraded');
    }
    await sleep(Math.max(0, 4000 - (Date.now() - t0)));
    const t1 = Date.now();
    redis = await startRedis({ port: redis.port });
    await until(() => allStores(rs, 'up'), 'every replica up again');
    await sleep(500);
    const shots = await gen.stop();
    // Quiet again, the budget refills: healthy.
    await until(
      async () => (await Promise.all(rs.map(health))).every((h) => h.status === 'healthy'),
      'healthy',
    );
    const down = arrivals(t0, t1);
    expect(down).toBeLessThanOrEqual((1.5 * L * (t1 - t0)) / 1000);
    expect(down).toBeGreaterThan(0); // served meanwhile, on the shares
    expect(shots.filter((s) => s.status >= 500)).toEqual([]);
    for (const r of rs) {
      expect(await metric(r, 'lb_store_up')).toBe(1);
      expect(await metric(r, 'lb_store_errors_total')).toBeGreaterThan(0);
      expect(await metric(r, 'lb_store_latency_seconds_count')).toBeGreaterThan(0);
      // Each change logged once: degraded, then up again.
      const seen = transitions(r);
      expect(seen.at(-1)).toBe('up');
      expect(seen.every((t, i) => i === 0 || t !== seen[i - 1])).toBe(true);
    }
  });

  it('Redis stalled (SIGSTOP): ≤ 1.5 × the limit during, nobody waits on it, traffic back within 3 s', async () => {
    await until(
      async () => (await Promise.all(rs.map(health))).every((h) => h.sharedStore.replicas === 3),
      'three replicas counted again',
    );
    const gen = drive(rs, L);
    await sleep(1000);
    const before = rs.map((r) => transitions(r).length);
    const t0 = Date.now();
    redis.pause();
    try {
      // The next flush of each replica meets the command timeout.
      await until(() => allStores(rs, 'degraded'), 'every replica degraded');
      for (const r of rs) expect((await health(r)).status).not.toBe('healthy');
      await sleep(Math.max(0, 4000 - (Date.now() - t0)));
    } finally {
      redis.resume();
    }
    const t1 = Date.now();
    await until(() => allStores(rs, 'up'), 'every replica up again');
    await sleep(Math.max(0, 3000 - (Date.now() - t1)));
    const t2 = Date.now();
    const shots = await gen.stop();
    const during = arrivals(t0, t1);
    expect(during).toBeLessThanOrEqual((1.5 * L * (t1 - t0)) / 1000);
    // No blackout after it: within 3 s the endpoint serves its budget again (no debt from the stall).
    const after = arrivals(t1 + 1000, t2);
    expect(after).toBeGreaterThanOrEqual((0.75 * L * (t2 - t1 - 1000)) / 1000);
    expect(shots.filter((s) => s.status >= 500)).toEqual([]);
    // Requests never waited on Redis: at most the router's wait for budget (maxWaitMs 250, up to 3 waits) and the trip.
    expect(Math.max(...shots.map((s) => s.end - s.start))).toBeLessThan(2000);
    for (const [i, r] of rs.entries()) {
      const seen = transitions(r).slice(before[i]);
      expect(seen[0]).toBe('degraded');
      expect(seen.at(-1)).toBe('up');
      expect(seen.every((t, j) => j === 0 || t !== seen[j - 1])).toBe(true);
    }
  });
});

describe('429 cooldowns reach the other replicas at once', { timeout: 60_000 }, () => {
  it('a 429 with Retry-After on one replica: the others send nothing more to that endpoint', async () => {
    const hot = await startFakeUpstream({ name: 'hot', acceptKeys: [upstreamKey] });
    try {
      const ep = [
        { id: 'hot', url: hot.url, apiKey: upstreamKey, priority: 1 },
        { id: 'up', url: up.url, apiKey: upstreamKey, priority: 2 },
      ];
      const url = `${redis.url}/1`;
      const rs: Replica[] = [];
      for (let i = 0; i < 3; i++) rs.push(await replica(url, ep));
      await subscribed(url, 'lb:ratelimit:1', 3);
      hot.next({ type: 'status', status: 429, headers: { 'retry-after': '5' } });
      expect((await ask(rs[0].client)).status).toBe(200); // failed over to `up`
      expect(hot.requests.length).toBe(1);
      const cooling = (r: Replica) =>
        r.server.router.snapshot().endpoints.find((e) => e.id === 'hot')!.available;
      await until(() => !cooling(rs[1]) && !cooling(rs[2]), 'the others adopted the cooldown');
      for (const r of rs.slice(1)) expect((await ask(r.client)).status).toBe(200);
      expect(hot.requests.length).toBe(1);
      expect(rs[1].server.router.snapshot().endpoints[0].unavailableReason).toMatch(/429/);
    } finally {
      await hot.close();
    }
  });
});

describe('breaker transitions are logged once each, at info', { timeout: 60_000 }, () => {
  it("opened here, opened on a peer's word, closed on both", async () => {
    const bad = await startFakeUpstream({ name: 'bad', defaultBehaviour: { type: 'status', status: 500 } });
    try {
      const ep = [
        { id: 'bad', url: bad.url, apiKey: upstreamKey, priority: 1 },
        { id: 'up', url: up.url, apiKey: upstreamKey, priority: 2 },
      ];
      const url = `${redis.url}/2`;
      const breaker = { enabled: true, threshold: 1, halfOpenAfterMs: 60_000 };
      const one = await replica(url, ep, breaker);
      const two = await replica(url, ep, breaker);
      await subscribed(url, 'lb:breaker:2', 2);
      const lines = (r: Replica) =>
        r.logs
          .map((l) => JSON.parse(l) as { level: number; msg: string; endpointId?: string; reason?: string })
          .filter((l) => l.msg.startsWith('breaker '));
      expect((await ask(one.client)).status).toBe(200); // failed over to `up`; the circuit of `bad` opened
      await until(() => lines(two).length > 0, 'the peer logged it');
      expect(lines(one)).toEqual([
        expect.objectContaining({ level: 30, msg: 'breaker open', endpointId: 'bad' }),
      ]);
      expect(lines(two)).toEqual([
        expect.objectContaining({
          level: 30,
          msg: 'breaker open',
          endpointId: 'bad',
          reason: expect.stringMatching(/^opened on replica \S+: 1 consecutive failures; last: HTTP 500/),
        }),
      ]);
      one.server.router.setEndpointHealth('bad', true);
      await until(() => lines(two).length > 1, 'closed on the peer');
      expect(lines(one).map((l) => l.msg)).toEqual(['breaker open', 'breaker closed']);
      expect(lines(two).map((l) => l.msg)).toEqual(['breaker open', 'breaker half-open', 'breaker closed']);
    } finally {
      await bad.close();
    }
  });
});

describe("a client's limit while Redis is away", { timeout: 60_000 }, () => {
  it('each replica allows the client its share of the window: limit ÷ replicas', async () => {
    const own = await startRedis();
    try {
      const ep = [{ id: 'up', url: up.url, apiKey: upstreamKey }];
      const rs: Replica[] = [];
      for (let i = 0; i < 3; i++) rs.push(await replica(own.url, ep, undefined, 9));
      await until(
        async () => (await Promise.all(rs.map(health))).every((h) => h.sharedStore.replicas === 3),
        'three replicas counted',
      );
      await own.stop();
      await until(() => allStores(rs, 'degraded'), 'every replica degraded');
      const served = [];
      for (const r of rs) {
        let ok = 0;
        for (let i = 0; i < 5; i++) if ((await ask(r.client)).status === 200) ok++;
        served.push(ok);
      }
      // 9 a minute for the client across the fleet: 3 on each replica, not 9 on each.
      expect(served).toEqual([3, 3, 3]);
    } finally {
      await own.stop();
    }
  });
});
