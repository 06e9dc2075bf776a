import { startRedis, type TestRedis } from '@lb/testing';
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BudgetStore, MemoryBudgetStore, RedisBudgetStore } from '../src/index.js';

/** What every BudgetStore does, the memory one and Redis alike. `far`: a time the store still sees as the present. */
function runBudgetStoreContract(name: string, create: () => BudgetStore, far: number) {
  describe(`BudgetStore contract: ${name}`, () => {
    const later = far + 86_400_000;
    it('admits below every limit and adds the amounts to every counter', async () => {
      const s = create();
      expect(await s.admit(['a', 'b'], [5, 100], [1.25, 10], [later, later])).toEqual({
        refused: -1,
        values: [1.25, 10],
      });
      expect(await s.admit(['a', 'b'], [5, 100], [0.5, 20], [later, later])).toEqual({
        refused: -1,
        values: [1.75, 30],
      });
      expect(await s.get(['a', 'b', 'missing'])).toEqual([1.75, 30, 0]);
    });

    it('refuses when a counter holds its limit or more, naming it, and changes nothing', async () => {
      const s = create();
      await s.admit(['a', 'b'], [5, 100], [5, 10], [later, later]);
      const r = await s.admit(['b', 'a'], [100, 5], [1, 1], [later, later]);
      expect(r.refused).toBe(1);
      expect(r.values[1]).toBe(5);
      expect(await s.get(['a', 'b'])).toEqual([5, 10]);
    });

    it('adds corrections, negative ones too, and keeps fractions of a cent', async () => {
      const s = create();
      await s.add(['a'], [0.000123], [later]);
      await s.add(['a'], [-0.0001], [later]);
      const [v] = await s.get(['a']);
      expect(v).toBeCloseTo(0.000023, 12);
    });

    it('forgets counters on delete, and when their window has passed', async () => {
      const s = create();
      await s.admit(['gone', 'kept'], [9, 9], [1, 1], [later, later]);
      await s.delete(['gone']);
      expect(await s.get(['gone', 'kept'])).toEqual([0, 1]);
      await s.add(['old'], [3], [1]); // expired long ago
      expect(await s.get(['old'])).toEqual([0]);
    });
  });
}

runBudgetStoreContract('MemoryBudgetStore', () => new MemoryBudgetStore({ now: () => 1_000 }), 1_000);

describe('RedisBudgetStore', () => {
  let redis: TestRedis;
  let client: Redis;
  let n = 0;
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url, { enableOfflineQueue: false, lazyConnect: true, maxRetriesPerRequest: 0 });
    await client.connect();
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  runBudgetStoreContract(
    'RedisBudgetStore',
    () => new RedisBudgetStore(client, { prefix: `c${++n}:` }),
    Date.now(),
  );

  it('refuses a client that is not a Redis client, and fails at once while Redis is away', async () => {
    expect(() => new RedisBudgetStore({} as never)).toThrow('an ioredis instance');
    const away = new RedisBudgetStore({
      status: 'reconnecting',
      script: async () => '',
      evalsha: async () => 0,
    });
    await expect(away.get(['a'])).rejects.toThrow('RedisBudgetStore: Redis is reconnecting');
  });

  it('loads its script again after Redis forgot it', async () => {
    const s = new RedisBudgetStore(client, { prefix: 'flush:' });
    await s.add(['a'], [1], [Date.now() + 60_000]);
    await client.script('FLUSH');
    expect(await s.get(['a'])).toEqual([1]);
  });
});
