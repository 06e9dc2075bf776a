import { createHash, createHmac } from 'node:crypto';
import { type Endpoint, maskKey } from '@lb/core';
import {
  type Admission,
  admitBudgets,
  type BudgetStore,
  Budgets,
  isSpendError,
  type KeyConfig,
  KeyRing,
  type MaybePromise,
  type PriceInput,
  PriceTable,
  type SpendError,
  SpendLedger,
  sameSecret,
  tokensOf,
  type UsageLike,
  type VirtualKey,
} from '@lb/spend';

/**
 * Virtual keys, budgets and cost for lb-server (`@lb/spend` wired to a reloadable config): the key ring and prices
 * are swapped whole by a reload; budgets, the ledger and the keys the admin API created live on.
 */

export { COST_HEADER, costText } from '@lb/exchange';

/** A refusal of `Wallet.admit` (401 / 403 / 429, OpenAI-shaped, `Retry-After` on 429), or undefined for another error. */
export function spendRefusal(e: unknown): SpendError | undefined {
  return isSpendError(e) ? e : undefined;
}

/** `[[keys]]` and `[prices]` as `@lb/config-env` gives them (`LbConfig.spend`). */
export interface SpendSection {
  keys?: readonly KeyConfig[];
  prices?: Readonly<Record<string, PriceInput>>;
}

/** One accepted gateway key: the key, its mask or name (logs) and its keyed hash (per-client limits). */
export interface ClientIdentity {
  readonly key: VirtualKey;
  /** `team-a`, or `sk-proj...N0IA` for an unnamed key: what logs and request records show. */
  readonly mask: string;
  /** A keyed hash of the key: what the per-client limiter counts under (never collides like masks do). */
  readonly id: string;
}

/** One admitted request, until its usage settles it (`@lb/spend`'s). */
export type { Admission } from '@lb/spend';

/** Where the admin API's keys persist (their SHA-256 only): Redis when configured, else this process's memory. */
export interface KeyVault {
  readonly kind: 'redis' | 'memory';
  load(): Promise<KeyConfig[]>;
  save(c: KeyConfig): Promise<void>;
  remove(name: string): Promise<void>;
}

export function memoryVault(): KeyVault {
  const m = new Map<string, KeyConfig>();
  return {
    kind: 'memory',
    load: async () => [...m.values()],
    save: async (c) => void m.set(c.name, c),
    remove: async (name) => void m.delete(name),
  };
}

/** The part of an ioredis client the vault uses. */
export interface RedisHashClient {
  hgetall(key: string): Promise<Record<string, string>>;
  hset(key: string, field: string, value: string): Promise<unknown>;
  hdel(key: string, field: string): Promise<unknown>;
}

export function redisVault(client: RedisHashClient, key = 'lb:keys'): KeyVault {
  return {
    kind: 'redis',
    load: async () => Object.values(await client.hgetall(key)).map((v) => JSON.parse(v) as KeyConfig),
    save: async (c) => void (await client.hset(key, c.name, JSON.stringify(c))),
    remove: async (name) => void (await client.hdel(key, name)),
  };
}

/** The keyed-hash secret of a set of keys: replicas with the same keys count a client under the same id. */
function idSecret(ring: KeyRing, apiKeys: readonly string[]): Buffer {
  const h = createHash('sha256').update('lb-client-id\0');
  for (const d of [...ring.list().map((k) => k.sha256), ...apiKeys].sort()) h.update(d).update('\0');
  return h.digest();
}

/** What {@link Wallet.prepare} builds and {@link Wallet.swap} puts in use. */
export interface PreparedSpend {
  readonly keys: readonly KeyConfig[];
  readonly apiKeys: readonly string[];
  readonly ring: KeyRing;
  readonly prices: PriceTable;
}

export class Wallet {
  ring: KeyRing;
  prices: PriceTable;
  readonly budgets: Budgets;
  readonly ledger: SpendLedger;
  readonly vault: KeyVault;
  /** Named keys from config (a reload replaces them); the vault's keys are added over them. */
  #configKeys: readonly KeyConfig[] = [];
  #apiKeys: readonly string[] = [];
  #created = new Map<string, KeyConfig>();
  #ids = new WeakMap<VirtualKey, ClientIdentity>();
  /** By connection: the key it last presented, the ring that knew it, and who it is (`identify`). */
  #byConn = new WeakMap<object, { secret: string; ring: KeyRing; who: ClientIdentity }>();
  #secret: Buffer;
  readonly #onUnknown: (model: string) => void;

  constructor(opts: {
    store?: BudgetStore;
    replicas?: number;
    vault: KeyVault;
    onUnknownPrice: (model: string) => void;
    onStoreError?: (e: unknown) => void;
  }) {
    this.#onUnknown = opts.onUnknownPrice;
    this.vault = opts.vault;
    this.ring = new KeyRing([]);
    this.prices = new PriceTable({ onUnknown: (m) => this.#onUnknown(m) });
    this.budgets = new Budgets({
      ...(opts.store ? { store: opts.store } : {}),
      ...(opts.replicas !== undefined ? { replicas: opts.replicas } : {}),
      ...(opts.onStoreError ? { onStoreError: opts.onStoreError } : {}),
    });
    this.ledger = new SpendLedger();
    this.#secret = idSecret(this.ring, []);
  }

  /** True when client keys are configured: requests must present one. */
  get enabled(): boolean {
    return this.ring.size > 0;
  }

  /** Builds the key ring and prices of a config (throws on a bad entry, changing nothing) and swaps them in. */
  configure(spend: SpendSection | undefined, apiKeys: readonly string[]): void {
    this.swap(this.prepare(spend, apiKeys));
  }

  /** The key ring and prices of a config, built and checked (throws on a bad entry) but not yet in use. */
  prepare(spend: SpendSection | undefined, apiKeys: readonly string[]): PreparedSpend {
    const keys = spend?.keys ?? [];
    const ring = this.#ringOf(keys, apiKeys, this.#created);
    const prices = new PriceTable({
      ...(spend?.prices ? { prices: spend.prices } : {}),
      onUnknown: (m) => this.#onUnknown(m),
    });
    return { keys, apiKeys, ring, prices };
  }

  /**
   * Swaps a prepared config in at once. Keys the admin API created are kept unless the config now names one the same.
   */
  swap(p: PreparedSpend): void {
    this.#configKeys = p.keys;
    this.#apiKeys = p.apiKeys;
    this.ring = p.ring;
    this.prices = p.prices;
    this.#ids = new WeakMap();
    this.#secret = idSecret(p.ring, p.apiKeys);
  }

  #ringOf(keys: readonly KeyConfig[], apiKeys: readonly string[], created: Map<string, KeyConfig>): KeyRing {
    const ring = new KeyRing(keys, { apiKeys });
    for (const c of created.values())
      if (ring.byName(c.name) === undefined) ring.add(c, `admin key ${c.name}`);
    return ring;
  }

  /**
   * Loads the vault's keys (at start and on reload: with Redis, what other replicas created, rotated or revoked
   * since), replacing the ones held.
   */
  async loadVault(): Promise<void> {
    const loaded = await this.vault.load();
    this.#created = new Map(loaded.map((c) => [c.name, c]));
    this.ring = this.#ringOf(this.#configKeys, this.#apiKeys, this.#created);
    this.#ids = new WeakMap();
  }

  /** Creates a key through the admin API: the secret, shown once. */
  async create(c: Omit<KeyConfig, 'key' | 'keySha256'>): Promise<{ key: VirtualKey; secret: string }> {
    const ring = this.#ringOf(this.#configKeys, this.#apiKeys, this.#created);
    const made = ring.create(c, 'body');
    const conf = made.key.toConfig();
    await this.vault.save(conf);
    this.#created.set(conf.name, conf);
    this.ring = ring;
    return made;
  }

  /** A new secret for a named key (the old one stops working at once). */
  async rotate(name: string): Promise<{ key: VirtualKey; secret: string } | undefined> {
    const k = this.ring.byName(name);
    if (k === undefined) return undefined;
    const { keySha256: _old, ...rest } = k.toConfig();
    const ring = this.#ringOf(
      this.#configKeys.filter((c) => c.name !== name),
      this.#apiKeys,
      new Map([...this.#created].filter(([n]) => n !== name)),
    );
    const made = ring.create(rest, 'rotate');
    const conf = made.key.toConfig();
    await this.vault.save(conf);
    this.#configKeys = this.#configKeys.filter((c) => c.name !== name);
    this.#created.set(name, conf);
    this.ring = ring;
    return made;
  }

  /** Revokes a named key; false when there is none. */
  async revoke(name: string): Promise<boolean> {
    if (this.ring.byName(name) === undefined) return false;
    await this.vault.remove(name);
    this.#created.delete(name);
    this.#configKeys = this.#configKeys.filter((c) => c.name !== name);
    this.ring = this.#ringOf(this.#configKeys, this.#apiKeys, this.#created);
    return true;
  }

  /**
   * The identity of a presented key, or undefined when it is not one of ours. `conn` (the client's socket): the
   * connection remembers the key it last presented and what it was, so that a keep-alive client's key is hashed once
   * per connection rather than per request. Compared in full and in constant time (a reverse proxy may carry many
   * clients' requests on one connection), and only while the key ring it was found in is the one in use (a reload,
   * rotation or revocation starts over).
   */
  identify(secret: string | undefined, conn?: object): ClientIdentity | undefined {
    if (conn !== undefined && secret !== undefined) {
      const seen = this.#byConn.get(conn);
      if (seen !== undefined && seen.ring === this.ring && sameSecret(seen.secret, secret)) return seen.who;
      const who = this.#identify(secret);
      if (who !== undefined) this.#byConn.set(conn, { secret, ring: this.ring, who });
      return who;
    }
    return this.#identify(secret);
  }

  #identify(secret: string | undefined): ClientIdentity | undefined {
    const key = this.ring.lookup(secret);
    if (key === undefined) return undefined;
    let who = this.#ids.get(key);
    if (who === undefined) {
      who = {
        key,
        mask: key.name ?? maskKey(secret!),
        id: `c_${createHmac('sha256', this.#secret).update(key.sha256).digest('base64url').slice(0, 22)}`,
      };
      this.#ids.set(key, who);
    }
    return who;
  }

  /**
   * Before routing: expiry (401), the model (403), the budgets with the estimate (429). Throws the {@link SpendError}
   * (synchronously, or the promise rejects with Redis); answers undefined for a key without budgets.
   */
  admit(
    key: VirtualKey,
    model: string | undefined,
    estimatedTokens: number,
  ): MaybePromise<Admission | undefined> {
    const now = Date.now();
    const refused = this.ring.check(key, model, now);
    if (refused) throw refused;
    return key.hasBudget
      ? admitBudgets(this.budgets, this.prices, key, model, estimatedTokens, now)
      : undefined;
  }

  /**
   * When the request ends: its cost (USD, undefined when unpriced — never 0 for an unknown price), the budgets
   * settled (a refund when `usage` is undefined), the ledger counted.
   */
  settle(
    key: VirtualKey | undefined,
    adm: Admission | undefined,
    usage: UsageLike | undefined,
    model: string | undefined,
    endpoint: Endpoint | undefined,
    /** The cost of `usage` when the caller priced it already (undefined: priced here). */
    priced?: number,
  ): number | undefined {
    const usd = priced ?? (usage ? this.prices.costOf(usage, model, endpoint) : undefined);
    if (adm !== undefined) {
      const tokens = usage ? tokensOf(usage) : 0;
      void this.budgets.settle(
        adm.key,
        adm.estimatedUsd,
        adm.estimatedTokens,
        usage ? usd : 0,
        tokens,
        adm.at,
      );
    }
    if (usage) this.ledger.record(key?.id ?? '(none)', model, endpoint?.id, usd, tokensOf(usage));
    return usd;
  }
}
