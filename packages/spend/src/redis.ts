import { ConfigError } from '@lb/core';
import type { AdmitReply, BudgetStore } from './store.js';

/**
 * The part of a Redis client the store uses: `SCRIPT LOAD` and `EVALSHA`, as `ioredis` offers them (the same shape
 * `@lb/ratelimit`'s `RedisStore` takes, so one client serves both). While the client says it is not `ready`, calls
 * fail at once rather than queue, and the budgets decide on their local share meanwhile.
 */
export interface RedisScriptClient {
  script(subcommand: 'LOAD', script: string): Promise<unknown>;
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  readonly status?: string;
}

/** Options of {@link RedisBudgetStore}. */
export interface RedisBudgetStoreOptions {
  /** Prefix of every key, before the budgets' own (`lb:spend:` by default). Default none. */
  prefix?: string;
}

/**
 * One script, four operations, each atomic. Counters are strings holding floats (`INCRBYFLOAT`), each expiring at its
 * window's end (`PEXPIREAT`, set when the counter is created). Values travel as strings: Redis would truncate a Lua
 * number reply to an integer.
 */
const SCRIPT = `
local op = ARGV[1]
local n = #KEYS
if op == 'admit' then
  local vals = {}
  for i = 1, n do
    local v = tonumber(redis.call('GET', KEYS[i]) or '0')
    vals[i] = tostring(v)
    if v >= tonumber(ARGV[1 + i]) then return {i, vals} end
  end
  for i = 1, n do
    local created = redis.call('EXISTS', KEYS[i]) == 0
    vals[i] = redis.call('INCRBYFLOAT', KEYS[i], ARGV[1 + n + i])
    if created then redis.call('PEXPIREAT', KEYS[i], ARGV[1 + 2 * n + i]) end
  end
  return {0, vals}
elseif op == 'add' then
  for i = 1, n do
    local created = redis.call('EXISTS', KEYS[i]) == 0
    redis.call('INCRBYFLOAT', KEYS[i], ARGV[1 + i])
    if created then redis.call('PEXPIREAT', KEYS[i], ARGV[1 + n + i]) end
  end
  return 1
elseif op == 'get' then
  local vals = {}
  for i = 1, n do vals[i] = redis.call('GET', KEYS[i]) or '0' end
  return vals
elseif op == 'del' then
  return redis.call('DEL', unpack(KEYS))
end
return redis.error_reply('lb RedisBudgetStore: unknown operation ' .. tostring(op))
`;

/**
 * A {@link BudgetStore} in Redis, shared by every replica that uses the same Redis (and prefix): one `EVALSHA` per
 * admission, one per settlement. Replicas' clocks are assumed in sync (NTP): windows are computed by the caller.
 * Bring your own client (`ioredis`, with `enableOfflineQueue: false`).
 *
 * @example
 * import Redis from 'ioredis';
 * const budgets = new Budgets({ store: new RedisBudgetStore(new Redis(url, { enableOfflineQueue: false })), replicas: 3 });
 */
export class RedisBudgetStore implements BudgetStore {
  readonly #client: RedisScriptClient;
  readonly #prefix: string;
  #sha: Promise<string> | undefined;

  constructor(client: RedisScriptClient, options: RedisBudgetStoreOptions = {}) {
    if (!client || typeof client.evalsha !== 'function' || typeof client.script !== 'function') {
      throw new ConfigError(
        'RedisBudgetStore: expected a Redis client with script() and evalsha() (an ioredis instance), received ' +
          (client === null ? 'null' : typeof client),
      );
    }
    this.#client = client;
    this.#prefix = options.prefix ?? '';
  }

  async admit(
    keys: readonly string[],
    limits: readonly number[],
    amounts: readonly number[],
    expireAt: readonly number[],
  ): Promise<AdmitReply> {
    const [i, vals] = (await this.#run('admit', keys, limits, amounts, expireAt)) as [number, string[]];
    return { refused: i - 1, values: vals.map(Number) };
  }

  async add(keys: readonly string[], amounts: readonly number[], expireAt: readonly number[]): Promise<void> {
    await this.#run('add', keys, amounts, expireAt);
  }

  async get(keys: readonly string[]): Promise<number[]> {
    return ((await this.#run('get', keys)) as string[]).map(Number);
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length) await this.#run('del', keys);
  }

  async #run(op: string, keys: readonly string[], ...lists: (readonly number[])[]): Promise<unknown> {
    const c = this.#client;
    if (c.status !== undefined && c.status !== 'ready')
      throw new Error(`RedisBudgetStore: Redis is ${c.status}`);
    const args: string[] = [];
    for (const k of keys) args.push(this.#prefix + k);
    args.push(op);
    for (const l of lists) for (const v of l) args.push(String(v));
    for (let attempt = 0; ; attempt++) {
      this.#sha ??= (c.script('LOAD', SCRIPT) as Promise<string>).catch((e: unknown) => {
        this.#sha = undefined;
        throw e;
      });
      const sha = await this.#sha;
      try {
        return await c.evalsha(sha, keys.length, ...args);
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
