import type { BucketSpec, Cooldown, Store, TakeResult, WindowResult, WindowSpec } from './store.js';

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
    tokens = math.min(cap, tokens + tonumber(ARGV[5]))
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
end
return redis.error_reply('lb RedisStore: unknown operation ' .. tostring(op))
`;

/**
 * A {@link Store} in Redis, shared by every replica that uses the same Redis (and key prefix): their per-endpoint
 * budgets, the cooldowns an upstream 429 started, and per-client windows. The rate limiter puts its synchronous
 * local view in front of it, so requests are decided at once and never wait for Redis; a Redis outage is counted
 * (`storeErrors`) and never fails a request. Replicas' clocks are assumed in sync (NTP): times are theirs.
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
  #sha: Promise<string> | undefined;

  constructor(client: RedisClientLike, options: RedisStoreOptions = {}) {
    if (!client || typeof client.evalsha !== 'function' || typeof client.script !== 'function') {
      throw new TypeError(
        'RedisStore: expected a Redis client with script() and evalsha() (an ioredis instance), received ' +
          (client === null ? 'null' : typeof client),
      );
    }
    this.#client = client;
    this.#prefix = options.prefix ?? '';
  }

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

  async #run(key: string, ...args: (string | number)[]): Promise<unknown> {
    const c = this.#client;
    if (c.status !== undefined && c.status !== 'ready') throw new Error(`RedisStore: Redis is ${c.status}`);
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
