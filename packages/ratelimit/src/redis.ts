import { ConfigError } from '@lb/core';
import { StoreMonitor } from './internal/store-monitor.js';
import type {
  BucketSpec,
  Cooldown,
  Store,
  StoreHealth,
  TakeResult,
  WindowResult,
  WindowSpec,
} from './store.js';

/**
 * The part of a Redis client the store uses: `SCRIPT LOAD` and `EVALSHA`, as `ioredis` offers them. When the client
 * tells its connection state (`status`, as ioredis does), commands are refused at once while it is not `ready`
 * rather than queued: the local view in front of the store counts the error and decides alone meanwhile.
 */
export interface RedisClientLike {
  script(subcommand: 'LOAD', script: string): Promise<unknown>;
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  readonly status?: string;
}

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** Prefix of every key, before the limiter's own (`lb:rl:` by default). Default none. */
  prefix?: string;
  /**
   * A command that has not answered after this long fails, and the store counts as `degraded` (a stalled Redis is
   * treated like a dead one) until a command answers again. Size it a few ms over the round trip `/metrics` shows
   * (`lb_store_latency_seconds`): too short and a busy moment degrades the store; too long and a stall over-admits
   * for longer. Default 100 ms. Env `LB_REDIS_COMMAND_TIMEOUT` (lb-server).
   */
  commandTimeoutMs?: number;
  /**
   * Replicas sharing the store, when fixed by config: a local view divides budgets by it. Default: counted from the
   * replicas' heartbeats in Redis (the last count while Redis is away). Env `LB_REPLICAS` (lb-server).
   */
  replicas?: number;
  /** This replica's name in the heartbeat set. Default: random. */
  replicaId?: string;
  /**
   * Heartbeat period while the store is up, ms: each one counts the live replicas (those heard within 3 periods),
   * and while degraded one every quarter period notices Redis answering again. Default 0: none (a replica count of
   * `replicas`, else 1, and the store comes back up with the next command that answers). lb-server runs one every
   * 1000 ms.
   */
  heartbeatMs?: number;
}

/**
 * Every operation is one script run, so each is atomic across replicas. The arithmetic is the memory store's
 * (`refill`, `windowDecision` in store.ts), number for number; numbers travel as strings (Redis would truncate a
 * Lua number to an integer reply). Keys expire once they carry nothing: a bucket when it would be full again, a
 * cooldown a minute after it ends, a window when the next one ends.
 */
const SCRIPT = `
local op = ARGV[1]
local key = KEYS[1]
if op == 'peek' or op == 'take' or op == 'adjust' then
  local cap = tonumber(ARGV[2])
  local rate = tonumber(ARGV[3])
  local now = tonumber(ARGV[4])
  local b = redis.call('HMGET', key, 't', 'a')
  local tokens = cap
  local at = now
  if b[1] then
    tokens = tonumber(b[1])
    at = tonumber(b[2])
    if now > at then
      tokens = math.min(cap, tokens + (now - at) * rate)
      at = now
    end
  end
  if op == 'peek' then return tostring(tokens) end
  if op == 'take' then
    local cost = tonumber(ARGV[5])
    if tokens < cost then return {0, tostring(tokens)} end
    tokens = tokens - cost
  else
    -- a debt is floored at one bucketful: late spends (a stall's backlog) never black the endpoint out for long
    tokens = math.max(-cap, math.min(cap, tokens + tonumber(ARGV[5])))
  end
  redis.call('HSET', key, 't', tostring(tokens), 'a', tostring(at))
  if rate > 0 then redis.call('PEXPIRE', key, math.ceil((cap - tokens) / rate) + 1000) end
  if op == 'take' then return {1, tostring(tokens)} end
  return tostring(tokens)
elseif op == 'getcd' then
  local now = tonumber(ARGV[2])
  local c = redis.call('HMGET', key, 'u', 'r')
  if c[1] and tonumber(c[1]) > now then return {c[1], c[2]} end
  return false
elseif op == 'setcd' then
  local u = tonumber(ARGV[2])
  local cur = redis.call('HGET', key, 'u')
  if cur and tonumber(cur) >= u then return 0 end
  redis.call('HSET', key, 'u', ARGV[2], 'r', ARGV[3])
  local t = redis.call('TIME')
  local serverNow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('PEXPIRE', key, math.max(0, math.ceil(u - serverNow)) + 60000)
  return 1
elseif op == 'hit' or op == 'record' then
  local limit = tonumber(ARGV[2])
  local w = tonumber(ARGV[3])
  local sliding = ARGV[4] == '1'
  local now = tonumber(ARGV[5])
  local start = math.floor(now / w) * w
  local s = redis.call('HMGET', key, 's', 'c', 'p')
  local count = 0
  local prev = 0
  if s[1] then
    local st = tonumber(s[1])
    if st == start then
      count = tonumber(s[2])
      prev = tonumber(s[3])
    elseif st == start - w then
      prev = tonumber(s[2])
    end
  end
  -- record: n requests admitted elsewhere count whatever the window holds; the reply is for a next request.
  if op == 'record' then count = count + tonumber(ARGV[6]) end
  local resetAt = start + w
  local weight = 0
  if sliding then weight = (resetAt - now) / w end
  local used = prev * weight + count
  local reply
  if used + 1 <= limit + 1e-9 then
    -- the count with this request (hit), or with a next one (record)
    reply = {1, tostring(math.ceil(used + 1 - 1e-9)), tostring(resetAt), '0'}
    if op == 'hit' then count = count + 1 end
  else
    local retry
    local room = limit - 1 - count
    if sliding and room >= 0 and prev > 0 then
      retry = math.max(1, math.ceil(resetAt - (room * w) / prev - now))
    elseif sliding and count > 0 then
      retry = math.max(1, math.ceil(resetAt - now + w * (1 - (limit - 1) / count)))
    else
      retry = math.max(1, resetAt - now)
    end
    reply = {0, tostring(math.ceil(used - 1e-9)), tostring(resetAt), tostring(retry)}
  end
  redis.call('HSET', key, 's', tostring(start), 'c', tostring(count), 'p', tostring(prev))
  redis.call('PEXPIRE', key, math.ceil(resetAt + w - now))
  return reply
elseif op == 'del' then
  return redis.call('DEL', key)
elseif op == 'beat' then
  -- A replica's heartbeat: its score is Redis's own time; those silent for ttl ms are gone. Replies the count.
  local ttl = tonumber(ARGV[3])
  local t = redis.call('TIME')
  local serverNow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', key, serverNow, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', serverNow - ttl)
  redis.call('PEXPIRE', key, ttl * 2)
  return redis.call('ZCARD', key)
elseif op == 'ping' then
  return 1
elseif op == 'leave' then
  return redis.call('ZREM', key, ARGV[2])
end
return redis.error_reply('lb RedisStore: unknown operation ' .. tostring(op))
`;

/**
 * A {@link Store} in Redis, shared by every replica that uses the same Redis (and key prefix): their per-endpoint
 * budgets, the cooldowns an upstream 429 started, and per-client windows. The rate limiter puts its synchronous
 * local view in front of it, so requests are decided at once and never wait for Redis; a Redis outage is counted
 * (`storeErrors`) and never fails a request. Replicas' clocks are assumed in sync (NTP): times are theirs.
 *
 * Every command has a timeout (`commandTimeoutMs`): a Redis that errors, is away or stalls makes the store
 * `degraded` ({@link RedisStore.health}), and the local view then holds this replica to its share of each budget
 * (limit ÷ replicas, the replicas counted by heartbeats in Redis) until a command answers again. Call `close()` to
 * stop the heartbeat.
 *
 * Bring your own client (`ioredis`); with `enableOfflineQueue: false` nothing piles up while Redis is away.
 *
 * @example
 * import Redis from 'ioredis';
 * const store = new RedisStore(new Redis(process.env.REDIS_URL, { enableOfflineQueue: false }));
 * attachRateLimit(router, { store });
 */
export class RedisStore implements Store {
  readonly #client: RedisClientLike;
  readonly #prefix: string;
  readonly #monitor: StoreMonitor;
  readonly #timeoutMs: number;
  readonly #replicaId: string;
  readonly #heartbeatMs: number;
  #heartbeat: ReturnType<typeof setTimeout> | undefined;
  #beating = false;
  #closed = false;
  #sha: Promise<string> | undefined;

  constructor(client: RedisClientLike, options: RedisStoreOptions = {}) {
    if (!client || typeof client.evalsha !== 'function' || typeof client.script !== 'function') {
      throw new ConfigError(
        'RedisStore: expected a Redis client with script() and evalsha() (an ioredis instance), received ' +
          (client === null ? 'null' : typeof client),
      );
    }
    const t = options.commandTimeoutMs ?? 100;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0)
      throw new ConfigError(
        `RedisStore: commandTimeoutMs must be a number > 0, received ${JSON.stringify(t)}`,
      );
    const n = options.replicas;
    if (n !== undefined && (!Number.isInteger(n) || n < 1))
      throw new ConfigError(`RedisStore: replicas must be an integer >= 1, received ${JSON.stringify(n)}`);
    const hb = options.heartbeatMs ?? 0;
    if (typeof hb !== 'number' || !Number.isFinite(hb) || hb < 0)
      throw new ConfigError(`RedisStore: heartbeatMs must be a number >= 0, received ${JSON.stringify(hb)}`);
    this.#client = client;
    this.#prefix = options.prefix ?? '';
    this.#timeoutMs = t;
    this.#heartbeatMs = hb;
    this.#replicaId = options.replicaId ?? `replica-${Math.random().toString(36).slice(2, 10)}`;
    this.#monitor = new StoreMonitor(t, n);
    if (hb > 0) this.#beat();
    // Degraded: probe until Redis answers again (a local view sends nothing meanwhile).
    this.#monitor.onState((c) => {
      if (c.to !== 'degraded') return;
      // Probe on the degraded pace from now on, not at the next heartbeat.
      clearTimeout(this.#heartbeat);
      this.#beat();
    });
  }

  /** Whether Redis answers, and how many replicas share it (typed state changes: `health.onState`). */
  get health(): StoreHealth {
    return this.#monitor;
  }

  /** Stops the heartbeat and takes this replica out of the count (best effort). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#heartbeat);
    this.#heartbeat = undefined;
    if (this.#heartbeatMs > 0) await this.#run('lb:replicas', 'leave', this.#replicaId).catch(() => {});
  }

  /**
   * A heartbeat (with `heartbeatMs`) or a probe: one now, then every `heartbeatMs` while up; while degraded one every
   * quarter of it (250 ms without heartbeats, at least 50 ms), so a Redis that answers again is noticed soon. One at
   * a time: a stalled one is not piled on. Without heartbeats the timer runs only while degraded.
   */
  readonly #beat = (): void => {
    this.#heartbeat = undefined;
    if (this.#closed) return;
    const hb = this.#heartbeatMs;
    const status = this.#client.status;
    // Still making its first connection: not a failure yet (the first requests' flushes say so if it lasts).
    const first = this.#monitor.answers === 0 && (status === 'connecting' || status === 'wait');
    const degraded = this.#monitor.state === 'degraded';
    if (!this.#beating && !first && (hb > 0 || degraded)) {
      this.#beating = true;
      const ttl = Math.max(3 * hb, 2 * this.#timeoutMs);
      const run =
        hb > 0 ? this.#run('lb:replicas', 'beat', this.#replicaId, ttl) : this.#run('lb:ping', 'ping');
      run.then(
        (n) => {
          this.#beating = false;
          if (hb > 0) this.#monitor.counted(Number(n));
        },
        () => {
          this.#beating = false;
        },
      );
    }
    if (hb === 0 && !degraded && !first) return;
    const soon = first || degraded;
    this.#heartbeat = setTimeout(this.#beat, soon ? Math.max(50, (hb || 1000) / 4) : hb);
    (this.#heartbeat as { unref?: () => void }).unref?.();
  };

  async peek(key: string, spec: BucketSpec, now: number): Promise<number> {
    return Number(await this.#run(key, 'peek', spec.capacity, spec.refillPerMs, now));
  }

  async take(key: string, cost: number, spec: BucketSpec, now: number): Promise<TakeResult> {
    const [ok, tokens] = (await this.#run(key, 'take', spec.capacity, spec.refillPerMs, now, cost)) as [
      number,
      string,
    ];
    return { ok: ok === 1, tokens: Number(tokens) };
  }

  async adjust(key: string, delta: number, spec: BucketSpec, now: number): Promise<number> {
    return Number(await this.#run(key, 'adjust', spec.capacity, spec.refillPerMs, now, delta));
  }

  async getCooldown(key: string, now: number): Promise<Cooldown | undefined> {
    const r = (await this.#run(key, 'getcd', now)) as [string, string] | null;
    return r ? { until: Number(r[0]), reason: r[1] } : undefined;
  }

  async setCooldown(key: string, cooldown: Cooldown): Promise<void> {
    await this.#run(key, 'setcd', cooldown.until, cooldown.reason);
  }

  async hit(key: string, spec: WindowSpec, now: number): Promise<WindowResult> {
    return this.#window(await this.#run(key, 'hit', spec.limit, spec.windowMs, spec.sliding ? 1 : 0, now));
  }

  async record(key: string, spec: WindowSpec, now: number, n: number): Promise<WindowResult> {
    return this.#window(
      await this.#run(key, 'record', spec.limit, spec.windowMs, spec.sliding ? 1 : 0, now, n),
    );
  }

  async delete(key: string): Promise<void> {
    await this.#run(key, 'del');
  }

  #window(reply: unknown): WindowResult {
    const [allowed, count, resetAt, retryAfterMs] = reply as [number, string, string, string];
    return {
      allowed: allowed === 1,
      count: Number(count),
      resetAt: Number(resetAt),
      retryAfterMs: Number(retryAfterMs),
    };
  }

  /**
   * One script run within the command timeout: its round trip is recorded, an error or a timeout degrades the store
   * (and rejects), an answer brings it back up.
   */
  #run(key: string, ...args: (string | number)[]): Promise<unknown> {
    const m = this.#monitor;
    const c = this.#client;
    if (c.status !== undefined && c.status !== 'ready') {
      const err = new Error(`RedisStore: Redis is ${c.status}`);
      m.failed(err.message);
      return Promise.reject(err);
    }
    const started = performance.now();
    return new Promise((resolve, reject) => {
      let settled = false;
      // The timeout is judged after the event loop's next look at the sockets (setImmediate runs after the poll
      // phase): a replica whose loop was busy past the timeout reads an answer that did come before failing it.
      const timer = setTimeout(
        () =>
          setImmediate(() => {
            if (settled) return;
            settled = true;
            const err = new Error(`RedisStore: no answer within ${this.#timeoutMs} ms`);
            m.failed(err.message);
            reject(err);
          }),
        this.#timeoutMs,
      );
      this.#call(key, args).then(
        (v) => {
          clearTimeout(timer);
          m.answered(performance.now() - started);
          if (settled) return;
          settled = true;
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          if (settled) return;
          settled = true;
          m.failed(errorReason(e));
          reject(e);
        },
      );
    });
  }

  async #call(key: string, args: (string | number)[]): Promise<unknown> {
    const c = this.#client;
    for (let attempt = 0; ; attempt++) {
      this.#sha ??= (c.script('LOAD', SCRIPT) as Promise<string>).catch((e: unknown) => {
        this.#sha = undefined;
        throw e;
      });
      const sha = await this.#sha;
      try {
        return await c.evalsha(sha, 1, this.#prefix + key, ...args.map(String));
      } catch (e) {
        // Redis restarted or its scripts were flushed: load the script again, once.
        if (attempt === 0 && /NOSCRIPT/.test(String((e as Error)?.message))) {
          this.#sha = undefined;
          continue;
        }
        throw e;
      }
    }
  }
}

/**
 * Why a command failed, for health pages and logs: the error's code when it has one (`ECONNREFUSED`), else its
 * message without addresses or URLs (a Redis URL may carry a password), at most 120 characters.
 */
function errorReason(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string' && code !== '') return `Redis error: ${code}`;
  const msg = String((e as Error)?.message ?? e)
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, '<url>')
    .replace(/\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b/g, '<address>')
    .slice(0, 120);
  return `Redis error: ${msg}`;
}
