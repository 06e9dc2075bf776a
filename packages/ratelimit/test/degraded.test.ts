import { createRouter } from '@lb/core';
import { fakeKey, startRedis, type TestRedis } from '@lb/testing';
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachRateLimit,
  type BucketSpec,
  createClientLimiter,
  MemoryStore,
  type RateLimitPeers,
  RedisStore,
  type StoreStateChange,
} from '../src/index.js';

// A shared store that stalls or dies: the store says so (typed, once per change), each replica keeps to its share of
// every budget meanwhile, nothing it spent lands on the shared budget later, and a debt never exceeds one bucketful.

const spec: BucketSpec = { capacity: 5, refillPerMs: 5 / 1000 };
const ep = (id: string, extra = {}) => ({ id, url: `http://${id}.test/v1`, apiKey: fakeKey(id), ...extra });

let redis: TestRedis;
const clients: Redis[] = [];

async function connect(url = redis.url): Promise<Redis> {
  const c = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 50,
    lazyConnect: true,
  });
  c.on('error', () => {});
  await c.connect();
  clients.push(c);
  return c;
}

/** Resolves with the store's next state change. */
function nextChange(store: RedisStore): Promise<StoreStateChange> {
  return new Promise((resolve) => {
    const off = store.health.onState((c) => {
      off();
      resolve(c);
    });
  });
}

/** Waits (polling every 20 ms, at most 10 s: a loaded machine is slow) for `cond`. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`condition not met within 10 s: ${cond}`);
}

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await redis?.stop();
});

describe('a debt is floored at one bucketful', () => {
  it('in Redis and in memory alike', async () => {
    const s = new RedisStore(await connect(), { prefix: `floor${Date.now()}:` });
    expect(await s.adjust('k', -100, spec, 0)).toBe(-5);
    expect(await s.peek('k', spec, 1000)).toBe(0); // one second later, not twenty
    const m = new MemoryStore();
    expect(m.adjust('k', -100, spec, 0)).toBe(-5);
    expect(m.peek('k', spec, 1000)).toBe(0);
  });
});

describe('a stalled or dead Redis degrades the store', () => {
  it('a stall fails commands after the command timeout and degrades the store once; answers bring it back up', async () => {
    const own = await startRedis();
    try {
      const s = new RedisStore(await connect(own.url), { commandTimeoutMs: 80, prefix: 'stall:' });
      const seen: StoreStateChange[] = [];
      s.health.onState((c) => seen.push(c));
      expect(await s.take('k', 1, spec, 0)).toEqual({ ok: true, tokens: 4 });
      expect(s.health.state).toBe('up');
      own.pause();
      const down = nextChange(s);
      await expect(s.take('k', 1, spec, 0)).rejects.toThrow('no answer within 80 ms');
      await expect(s.take('k', 1, spec, 0)).rejects.toThrow('no answer within 80 ms');
      expect(await down).toMatchObject({
        from: 'up',
        to: 'degraded',
        reason: expect.stringContaining('80 ms'),
      });
      const up = nextChange(s);
      own.resume();
      // Its own probe notices the answers: nothing else is sent while degraded.
      expect(await up).toMatchObject({ from: 'degraded', to: 'up', reason: 'answered again' });
      expect(seen.map((c) => c.to)).toEqual(['degraded', 'up']);
      const st = s.health.status();
      expect(st).toMatchObject({ state: 'up', commandTimeoutMs: 80, replicas: 1, share: 1 });
      expect(st.errors).toBeGreaterThanOrEqual(2); // and the probes that met the stall
      expect(st.latency.count).toBeGreaterThanOrEqual(2);
      await s.close();
    } finally {
      await own.stop();
    }
  });

  it('a busy event loop is not a stall: an answer that came while the loop was blocked counts', async () => {
    const s = new RedisStore(await connect(), { commandTimeoutMs: 30, prefix: `busy${Date.now()}:` });
    expect(await s.take('k', 1, spec, 0)).toEqual({ ok: true, tokens: 4 }); // the script is loaded
    const p = s.take('k', 1, spec, 0);
    // Once the command is on its way, the replica is busy elsewhere past the timeout; the answer comes meanwhile.
    await new Promise<void>((r) =>
      setImmediate(() => {
        const t0 = performance.now();
        while (performance.now() - t0 < 150);
        r();
      }),
    );
    expect(await p).toEqual({ ok: true, tokens: 3 });
    expect(s.health.status()).toMatchObject({ state: 'up', errors: 0 });
  });

  it("the reason it gives never carries the client's addresses or URLs", async () => {
    const client = {
      status: 'ready',
      script: async () => 'sha',
      evalsha: async () => {
        throw new Error('ERR from redis://:pw-secret@10.1.2.3:6379/0 via 10.1.2.3:6379');
      },
    };
    const s = new RedisStore(client);
    await expect(s.take('k', 1, spec, 0)).rejects.toThrow();
    const { state, reason } = s.health.status();
    expect(state).toBe('degraded');
    expect(reason).toBe('Redis error: ERR from <url> via <address>');
    await s.close();
  });

  it('heartbeats count the live replicas; the last count holds while Redis is away', async () => {
    const own = await startRedis();
    try {
      const opts = { heartbeatMs: 50, prefix: 'beat:' };
      const a = new RedisStore(await connect(own.url), { ...opts, replicaId: 'a' });
      const b = new RedisStore(await connect(own.url), { ...opts, replicaId: 'b' });
      const c = new RedisStore(await connect(own.url), { ...opts, replicaId: 'c' });
      await until(() => a.health.replicas === 3 && c.health.replicas === 3);
      await c.close(); // leaves the set at once
      await until(() => a.health.replicas === 2 && b.health.replicas === 2);
      const down = nextChange(a);
      await own.stop();
      expect(await down).toMatchObject({ to: 'degraded', replicas: 2, share: 0.5 });
      expect(a.health.status()).toMatchObject({ state: 'degraded', replicas: 2, share: 0.5 });
      // Fixed by config: heartbeats do not change it.
      const fixed = new RedisStore(await connect(), { heartbeatMs: 50, replicas: 4, prefix: 'fixed:' });
      expect(fixed.health.replicas).toBe(4);
      await Promise.all([a.close(), b.close(), fixed.close()]);
    } finally {
      await own.stop();
    }
  });
});

describe('an idle replica follows the heartbeat count', () => {
  it('splits its budgets as soon as a heartbeat counts the others, before it spends anything', async () => {
    const own = await startRedis();
    try {
      const opts = { heartbeatMs: 50, prefix: 'idle:' };
      const a = new RedisStore(await connect(own.url), { ...opts, replicaId: 'a' });
      const h = attachRateLimit(createRouter({ endpoints: [ep('a', { limits: { rps: 9 } })] }), { store: a });
      await until(() => a.health.status().latency.count >= 1);
      expect(h.snapshot().a.rps).toMatchObject({ capacity: 9, remaining: 9 });
      const others = [
        new RedisStore(await connect(own.url), { ...opts, replicaId: 'b' }),
        new RedisStore(await connect(own.url), { ...opts, replicaId: 'c' }),
      ];
      await until(() => a.health.replicas === 3);
      // No request, so no flush: the count itself re-split the budget (a burst now sends a third of it here).
      expect(h.snapshot().a.rps).toMatchObject({ capacity: 3, remaining: 3 });
      h.dispose();
      await Promise.all([a.close(), ...others.map((o) => o.close())]);
    } finally {
      await own.stop();
    }
  });
});

describe('a replica keeps to its share while the store is degraded', () => {
  it('limit ÷ replicas, burst and rate; none of it lands on the shared budget once Redis answers again', async () => {
    const own = await startRedis();
    try {
      let t = 1_000_000;
      const now = () => t;
      const store = new RedisStore(await connect(own.url), {
        replicas: 2,
        commandTimeoutMs: 80,
        prefix: 'share:',
      });
      const r = createRouter({ endpoints: [ep('a', { limits: { rpm: 60, tpm: 6000 } })], maxWaitMs: 0, now });
      const h = attachRateLimit(r, { store, now });
      const send = async (n: number) => {
        let ok = 0;
        for (let i = 0; i < n; i++)
          await r
            .execute({}, async () => ({ status: 200, headers: {} }))
            .then(
              () => ok++,
              () => {},
            );
        return ok;
      };
      // Up: requests per minute are a minute-long budget, used whole by whichever replica has the traffic.
      expect(await send(10)).toBe(10);
      await until(
        () => (h.snapshot().a.rpm?.remaining ?? 0) <= 50 && store.health.status().latency.count >= 1,
      );
      own.pause();
      const down = nextChange(store);
      await store.peek('lb:rl:a:rpm', { capacity: 60, refillPerMs: 60 / 60_000 }, t).catch(() => {});
      await down;
      // Degraded: this replica's share, 60 ÷ 2: at most 30 at once (never more than the level it knew: 50), then
      // 30 a minute.
      expect(h.snapshot().a.rpm).toMatchObject({ capacity: 30, remaining: 30 });
      expect(h.snapshot().a.tpm).toMatchObject({ capacity: 3000 }); // token budgets too
      expect(await send(35)).toBe(30);
      t += 10_000; // 10 s at 30/min: 5 more, not 10
      expect(await send(10)).toBe(5);
      expect(h.storeErrors).toBe(0); // nothing was sent to fail
      const up = nextChange(store);
      own.resume();
      await up;
      // The shared bucket holds only what was spent while Redis answered: 60 - 10, refilled over the 10 s (+10).
      const shared = await store.peek('lb:rl:a:rpm', { capacity: 60, refillPerMs: 60 / 60_000 }, t);
      expect(shared).toBeCloseTo(60, 0);
      // Up again: the whole budget (the local view refilled at 1/min per ms meanwhile; the shared level corrects it).
      expect(h.snapshot().a.rpm?.capacity).toBe(60);
      expect(h.snapshot().a.tpm?.capacity).toBe(6000);
      h.dispose();
      await store.close();
    } finally {
      await own.stop();
    }
  });

  it("a client's window allows its share while degraded", async () => {
    const own = await startRedis();
    try {
      const store = new RedisStore(await connect(own.url), { replicas: 3, prefix: 'win:' });
      const limiter = createClientLimiter({ requests: 9, windowMs: 60_000, store });
      expect(limiter.take('c').allowed).toBe(true);
      const down = nextChange(store);
      await own.stop();
      await store.peek('x', spec, 0).catch(() => {});
      await down;
      let allowed = 1;
      for (let i = 0; i < 10; i++) if (limiter.take('c').allowed) allowed++;
      expect(allowed).toBe(3); // 9 ÷ 3, the one before included
      await store.close();
    } finally {
      await own.stop();
    }
  });
});

describe('replicas share the burst', () => {
  it('three replicas starting a burst together send it once, not three times', async () => {
    const t = 2_000_000;
    const now = () => t;
    const prefix = `burst${Date.now()}:`;
    const replicas = await Promise.all(
      [1, 2, 3].map(async () => {
        const store = new RedisStore(await connect(), { prefix, replicas: 3 });
        const r = createRouter({
          endpoints: [ep('a', { limits: { rps: 10, burst: 9 } })],
          maxWaitMs: 0,
          now,
        });
        attachRateLimit(r, { store, now });
        return r;
      }),
    );
    let sent = 0;
    await Promise.all(
      replicas.flatMap((r) =>
        Array.from({ length: 15 }, () =>
          r
            .execute({}, async () => {
              sent++;
              return { status: 200, headers: {} };
            })
            .catch(() => {}),
        ),
      ),
    );
    expect(sent).toBe(9); // 3 each
  });
});

/** A Redis client that counts the commands still unanswered. */
function counting(c: Redis) {
  let pending = 0;
  const client = {
    get status() {
      return c.status;
    },
    script: (sub: 'LOAD', script: string) => c.script(sub, script),
    evalsha: (sha: string, keys: number, ...args: (string | number)[]) => {
      pending++;
      return c.evalsha(sha, keys, ...args).finally(() => pending--);
    },
  };
  return { client, pending: () => pending };
}

describe('replicas share the refill too', () => {
  /**
   * Three replicas on one shared per-second budget (rps 10), on a fake clock in 50 ms steps. In each step the chosen
   * replicas send until refused, one after the other, before any spend reached Redis (as a synchronized burst does);
   * then every spend is sent and answered.
   */
  async function fleet(
    steps: number,
    stepMs: number,
    senders: number[],
  ): Promise<{ sent: number; ms: number }> {
    let t = 5_000_000;
    const start = t;
    const now = () => t;
    const prefix = `refill${Date.now()}${Math.random()}:`;
    const replicas = await Promise.all(
      [0, 1, 2].map(async () => {
        const c = counting(await connect());
        const store = new RedisStore(c.client, { prefix, replicas: 3 });
        const r = createRouter({ endpoints: [ep('a', { limits: { rps: 10 } })], maxWaitMs: 0, now });
        attachRateLimit(r, { store, now, flushIntervalMs: 0 });
        return { r, c };
      }),
    );
    let sent = 0;
    const send = async (i: number) => {
      for (;;) {
        const ok = await replicas[i].r
          .execute({}, async () => ({ status: 200, headers: {} }))
          .then(
            () => true,
            () => false,
          );
        if (!ok) return;
        sent++;
      }
    };
    for (let step = 0; step <= steps; step++) {
      for (const i of senders) await send(i);
      // The flush timers (0 ms) run before this one; then their answers come.
      await new Promise((r) => setTimeout(r, 0));
      await until(() => replicas.every((x) => x.c.pending() === 0));
      await new Promise((r) => setImmediate(r));
      t += stepMs;
    }
    return { sent, ms: t - stepMs - start };
  }

  it('a synchronized burst, then the refill: never more than the burst and what refilled', async () => {
    const { sent, ms } = await fleet(20, 50, [0, 1, 2]);
    // The burst (10) and 10/s over the second: 20 (each share refills at a third of the rate).
    expect(sent).toBeLessThanOrEqual(10 + (10 * ms) / 1000);
    expect(sent).toBeGreaterThanOrEqual(10 + (10 * ms) / 1000 - 3);
  });

  it('one replica with all the traffic still gets the whole rate (the shares the others leave free)', async () => {
    const { sent, ms } = await fleet(30, 100, [0]);
    // Its own share is 3.3/s; the others' unused shares come to it through the shared level.
    expect(sent).toBeLessThanOrEqual(10 + (10 * ms) / 1000);
    expect(sent).toBeGreaterThanOrEqual((0.8 * 10 * ms) / 1000);
  });
});

describe('429 cooldowns reach the other replicas at once', () => {
  it('published on the peers channel: the other replica keeps away without sending one more request', async () => {
    // A channel as Redis pub/sub gives it (lb-server uses Redis; here an in-process one).
    const subs = new Set<(m: string) => void>();
    const peers: RateLimitPeers = {
      publish: (m) => queueMicrotask(() => subs.forEach((fn) => fn(m))),
      subscribe: (fn) => {
        subs.add(fn);
        return () => subs.delete(fn);
      },
    };
    const make = (replicaId: string) => {
      const r = createRouter({ endpoints: [ep('a'), ep('b', { priority: 2 })], maxWaitMs: 0 });
      const h = attachRateLimit(r, { store: new MemoryStore(), peers, replicaId });
      return { r, h };
    };
    const one = make('one');
    const two = make('two');
    await one.r.execute({}, async (ctx) =>
      ctx.endpoint.id === 'a'
        ? { status: 429, headers: { 'retry-after': '5' } }
        : { status: 200, headers: {} },
    );
    await new Promise<void>((r) => queueMicrotask(r));
    expect(two.r.pick()?.endpoint.id).toBe('b');
    expect(two.h.snapshot().a).toMatchObject({ cooldownReason: expect.stringMatching(/429/) });
    // Its own message does not loop back, and junk is ignored.
    peers.publish('not json');
    peers.publish(
      JSON.stringify({ v: 1, from: 'x', key: 'lb:rl:nope:cooldown', until: Date.now() + 1e6, reason: 'r' }),
    );
    await new Promise<void>((r) => queueMicrotask(r));
    expect(two.h.snapshot().nope).toBeUndefined();
    one.h.dispose();
    two.h.dispose();
    expect(subs.size).toBe(0);
  });
});
