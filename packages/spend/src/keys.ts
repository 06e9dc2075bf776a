import * as crypto from 'node:crypto';
import { ConfigError } from '@lb/core';
import { SpendError } from './errors.js';

/**
 * One client key as configured (`[[keys]]` in the config file, camelCased by `@lb/config-env`). Give the secret
 * (`key`) or its SHA-256 (`keySha256`, 64 hex digits: `printf %s "$KEY" | sha256sum`) so that the file holds no
 * secret.
 */
export interface KeyConfig {
  /** Unique name: shown in logs, stats and errors instead of the key. Required. */
  name: string;
  /** The secret clients send (`Authorization: Bearer …`). One of `key` / `keySha256`. */
  key?: string;
  /** SHA-256 of the secret, hex. One of `key` / `keySha256`. */
  keySha256?: string;
  /** Exposed model names or model groups the key may use. Omitted or empty: every model. */
  models?: readonly string[];
  /** Endpoint tags the key's requests route by (they need endpoints carrying all of them). */
  tags?: readonly string[];
  /** Requests per second for this key. Omitted: no limit. */
  rps?: number;
  /** Requests per minute for this key. Omitted: no limit. */
  rpm?: number;
  /** Tokens per minute for this key. Omitted: no limit. */
  tpm?: number;
  /** USD per UTC day. Omitted: no budget. */
  budgetUsdDay?: number;
  /** USD per UTC calendar month. Omitted: no budget. */
  budgetUsdMonth?: number;
  /** Tokens per UTC day. Omitted: no budget. */
  budgetTokensDay?: number;
  /**
   * When the key stops working: a date (`2027-06-30`: the key works through that day, UTC), an ISO timestamp, or
   * epoch ms. Omitted: never.
   */
  expires?: string | number | Date;
}

/** A key's budgets (undefined: none). */
export interface KeyBudgets {
  readonly usdDay: number | undefined;
  readonly usdMonth: number | undefined;
  readonly tokensDay: number | undefined;
}

/** A key's own rate limits (undefined: none). */
export interface KeyLimits {
  readonly rps: number | undefined;
  readonly rpm: number | undefined;
  readonly tpm: number | undefined;
}

/**
 * A client key as the gateway holds it: hashed, never the secret. `id` names it in stores and stats (its name, or
 * `sha256:<first 12 hex>` for the unnamed keys of `LB_API_KEYS`).
 */
export interface VirtualKey {
  readonly id: string;
  /** Configured name; undefined for the unnamed keys of `LB_API_KEYS`. */
  readonly name: string | undefined;
  /** SHA-256 of the secret, hex. Not a secret, but keep it out of logs anyway. */
  readonly sha256: string;
  /** Allowed models; undefined: every model. */
  readonly models: ReadonlySet<string> | undefined;
  readonly tags: readonly string[];
  readonly limits: KeyLimits;
  readonly budgets: KeyBudgets;
  /** True when at least one budget is set. */
  readonly hasBudget: boolean;
  /** Epoch ms from which the key is refused; undefined: never. */
  readonly expiresAt: number | undefined;
  /** Whether the key may use `model` (true when it lists no models, or no model is named). */
  allows(model: string | undefined): boolean;
  /** The key as a config entry holding its SHA-256, never the secret: what the admin API persists. */
  toConfig(): KeyConfig;
}

/** Options of {@link KeyRing}. */
export interface KeyRingOptions {
  /** Unnamed keys without limits (env `LB_API_KEYS`, config `server.api_keys`). */
  apiKeys?: readonly string[];
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
}

const HEX64 = /^[0-9a-f]{64}$/i;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DAY = 86_400_000;

const oneShot = (crypto as { hash?: (alg: string, data: string) => string }).hash;

/** SHA-256 of a key, hex (one call; Node 20.12+ takes the one-shot path, ~4× faster than a Hash object). */
function digest(key: string): string {
  return oneShot ? oneShot('sha256', key) : crypto.createHash('sha256').update(key).digest('hex');
}

/**
 * Compares two strings in constant time for their length (no early exit on the first difference, no allocation):
 * digests, or a secret against the one a connection presented before.
 */
export function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

/**
 * SHA-256 of a client key, hex: what `key_sha256` holds.
 *
 * @example
 * sha256Hex('sk-team-a-…'); // '9f86d081884c7d65…'
 */
export function sha256Hex(key: string): string {
  return digest(key);
}

/** Epoch ms from an `expires` value; throws naming `where` and the value. */
export function parseExpiry(v: string | number | Date, where = 'expires'): number {
  let t: number;
  if (v instanceof Date) t = v.getTime();
  else if (typeof v === 'number') t = v;
  else if (typeof v === 'string' && DATE_ONLY.test(v.trim())) t = Date.parse(`${v.trim()}T00:00:00Z`) + DAY;
  else if (typeof v === 'string') t = Date.parse(v);
  else t = Number.NaN;
  if (!Number.isFinite(t)) {
    throw new ConfigError(
      `${where}: expected a date (2027-06-30), an ISO timestamp or epoch ms, received ${JSON.stringify(v)}`,
    );
  }
  return t;
}

function limit(v: unknown, where: string, int = false): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (int && !Number.isInteger(v))) {
    throw new ConfigError(
      `${where}: expected ${int ? 'an integer' : 'a number'} >= 0, received ${JSON.stringify(v)}`,
    );
  }
  return v;
}

class Key implements VirtualKey {
  readonly id: string;
  readonly name: string | undefined;
  readonly sha256: string;
  readonly models: ReadonlySet<string> | undefined;
  readonly tags: readonly string[];
  readonly limits: KeyLimits;
  readonly budgets: KeyBudgets;
  readonly hasBudget: boolean;
  readonly expiresAt: number | undefined;
  constructor(sha256: string, c: KeyConfig | undefined, where: string) {
    this.sha256 = sha256;
    this.name = c?.name;
    this.id = c ? c.name : `sha256:${this.sha256.slice(0, 12)}`;
    this.models = c?.models?.length ? new Set(c.models) : undefined;
    this.tags = Object.freeze([...(c?.tags ?? [])]);
    this.limits = Object.freeze({
      rps: limit(c?.rps, `${where}.rps`),
      rpm: limit(c?.rpm, `${where}.rpm`),
      tpm: limit(c?.tpm, `${where}.tpm`),
    });
    this.budgets = Object.freeze({
      usdDay: limit(c?.budgetUsdDay, `${where}.budget_usd_day`),
      usdMonth: limit(c?.budgetUsdMonth, `${where}.budget_usd_month`),
      tokensDay: limit(c?.budgetTokensDay, `${where}.budget_tokens_day`, true),
    });
    const b = this.budgets;
    // A tokens-per-minute limit is kept like a budget (a counter per minute, estimate in, usage settled).
    this.hasBudget =
      b.usdDay !== undefined ||
      b.usdMonth !== undefined ||
      b.tokensDay !== undefined ||
      this.limits.tpm !== undefined;
    this.expiresAt = c?.expires === undefined ? undefined : parseExpiry(c.expires, `${where}.expires`);
  }

  allows(model: string | undefined): boolean {
    return this.models === undefined || model === undefined || this.models.has(model);
  }

  toConfig(): KeyConfig {
    const c: KeyConfig = { name: this.name ?? this.id, keySha256: this.sha256 };
    if (this.models) c.models = [...this.models];
    if (this.tags.length) c.tags = [...this.tags];
    const { rps, rpm, tpm } = this.limits;
    const { usdDay, usdMonth, tokensDay } = this.budgets;
    if (rps !== undefined) c.rps = rps;
    if (rpm !== undefined) c.rpm = rpm;
    if (tpm !== undefined) c.tpm = tpm;
    if (usdDay !== undefined) c.budgetUsdDay = usdDay;
    if (usdMonth !== undefined) c.budgetUsdMonth = usdMonth;
    if (tokensDay !== undefined) c.budgetTokensDay = tokensDay;
    if (this.expiresAt !== undefined) c.expires = this.expiresAt;
    return c;
  }

  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      name: this.name,
      models: this.models ? [...this.models] : undefined,
      tags: this.tags,
      limits: this.limits,
      budgets: this.budgets,
      expiresAt: this.expiresAt === undefined ? undefined : new Date(this.expiresAt).toISOString(),
    };
  }
}

/**
 * The client keys a gateway accepts: named keys from config (`[[keys]]`, later the admin API) with their models,
 * tags, limits, budgets and expiry, plus the unnamed keys of `LB_API_KEYS`. Only SHA-256 digests are held: a lookup
 * hashes the presented key, finds its digest in a map (O(1)) and compares the bytes in constant time.
 *
 * @example
 * const ring = new KeyRing([{ name: 'team-a', key: process.env.TEAM_A_KEY, models: ['gpt-4o-mini'], budgetUsdDay: 5 }], { apiKeys: ['sk-old'] });
 * const key = ring.authorize(bearer, body.model); // throws SpendError 401 / 403
 */
export class KeyRing {
  readonly #byDigest = new Map<string, Key>();
  readonly #byName = new Map<string, Key>();
  readonly #now: () => number;

  constructor(keys: readonly KeyConfig[] = [], options: KeyRingOptions = {}) {
    if (!Array.isArray(keys))
      throw new ConfigError(`KeyRing: keys must be an array, received ${typeof keys}`);
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new ConfigError(`KeyRing: now must be a function, received ${typeof options.now}`);
    }
    this.#now = options.now ?? Date.now;
    keys.forEach((c, i) => {
      this.add(c, `keys[${i}]`);
    });
    (options.apiKeys ?? []).forEach((k, i) => {
      if (typeof k !== 'string' || k === '') {
        throw new ConfigError(`apiKeys[${i}]: expected a non-empty string, received ${typeof k}`);
      }
      const hex = digest(k);
      // A named key with the same secret wins: it carries the limits.
      if (!this.#byDigest.has(hex)) this.#byDigest.set(hex, new Key(hex, undefined, `apiKeys[${i}]`));
    });
  }

  /** Number of keys (named and unnamed). */
  get size(): number {
    return this.#byDigest.size;
  }

  /** The named keys (no secrets in them). */
  list(): VirtualKey[] {
    return [...this.#byName.values()];
  }

  /** A named key by name. */
  byName(name: string): VirtualKey | undefined {
    return this.#byName.get(name);
  }

  /**
   * Adds a named key (the admin API creates keys through this); throws on a bad entry, naming `where`, or on a name
   * or secret already held.
   */
  add(c: KeyConfig, where = 'key'): VirtualKey {
    if (!c || typeof c !== 'object')
      throw new ConfigError(`${where}: expected a table, received ${typeof c}`);
    if (typeof c.name !== 'string' || c.name === '') {
      throw new ConfigError(`${where}.name: missing: every key needs a name`);
    }
    if ((c.key === undefined) === (c.keySha256 === undefined)) {
      throw new ConfigError(`${where}: set exactly one of key and key_sha256`);
    }
    let hex: string;
    if (c.key !== undefined) {
      if (typeof c.key !== 'string' || c.key === '') throw new ConfigError(`${where}.key: must not be empty`);
      hex = digest(c.key);
    } else {
      if (typeof c.keySha256 !== 'string' || !HEX64.test(c.keySha256)) {
        throw new ConfigError(
          `${where}.key_sha256: expected 64 hex digits (a SHA-256), received a ${typeof c.keySha256}`,
        );
      }
      hex = c.keySha256.toLowerCase();
    }
    if (this.#byName.has(c.name))
      throw new ConfigError(`${where}.name: duplicate key name ${JSON.stringify(c.name)}`);
    // An unnamed key (`LB_API_KEYS`) with the same secret gives way: the named one carries the limits.
    const held = this.#byDigest.get(hex);
    if (held?.name !== undefined) {
      throw new ConfigError(`${where}: the same secret as key ${JSON.stringify(held.name)}`);
    }
    const k = new Key(hex, c, where);
    this.#byDigest.set(hex, k);
    this.#byName.set(c.name, k);
    return k;
  }

  /**
   * Creates a named key with a new random secret (`sk-lb-` and 43 base64url characters, 256 bits) and adds it. The
   * secret is returned this once and never held: persist `key.toConfig()` (its SHA-256), show `secret` to the caller.
   *
   * @example
   * const { key, secret } = ring.create({ name: 'team-c', budgetUsdDay: 5 });
   * await store.save(key.toConfig()); // no secret in it
   */
  create(c: Omit<KeyConfig, 'key' | 'keySha256'>, where = 'key'): { key: VirtualKey; secret: string } {
    const secret = `sk-lb-${crypto.randomBytes(32).toString('base64url')}`;
    return { key: this.add({ ...c, key: secret }, where), secret };
  }

  /** Removes a named key (revoke); true when it was held. */
  remove(name: string): boolean {
    const k = this.#byName.get(name);
    if (!k) return false;
    this.#byName.delete(name);
    this.#byDigest.delete(k.sha256);
    return true;
  }

  /** The key a client presented, or undefined when it is not one of ours. Does not check expiry or models. */
  lookup(secret: string | undefined): VirtualKey | undefined {
    if (!secret) return undefined;
    const hex = digest(secret);
    const k = this.#byDigest.get(hex);
    // The map matched on the digest; the comparison is constant-time all the same.
    return k !== undefined && sameSecret(k.sha256, hex) ? k : undefined;
  }

  /**
   * The key a client presented, checked: known (else 401 `invalid_api_key`), not expired (else 401 `key_expired`),
   * allowed `model` (else 403 `model_not_allowed`; not checked when `model` is undefined). Throws a
   * {@link SpendError}.
   */
  authorize(secret: string | undefined, model?: string, now = this.#now()): VirtualKey {
    const k = this.lookup(secret);
    if (k === undefined) {
      throw new SpendError(
        'invalid_api_key',
        secret ? 'Incorrect API key provided.' : 'Missing API key: send it as "Authorization: Bearer <key>".',
      );
    }
    const err = this.check(k, model, now);
    if (err) throw err;
    return k;
  }

  /** What {@link authorize} checks on a key already found, as an error to throw or undefined. */
  check(k: VirtualKey, model: string | undefined, now = this.#now()): SpendError | undefined {
    if (k.expiresAt !== undefined && now >= k.expiresAt) {
      return new SpendError(
        'key_expired',
        `API key ${JSON.stringify(k.id)} expired at ${new Date(k.expiresAt).toISOString()}; ask for a new key.`,
        { ...(k.name !== undefined ? { keyName: k.name } : {}) },
      );
    }
    if (!k.allows(model)) {
      return new SpendError(
        'model_not_allowed',
        `API key ${JSON.stringify(k.id)} may not use model ${JSON.stringify(model)}; it may use: ${[...(k.models ?? [])].join(', ')}.`,
        { ...(k.name !== undefined ? { keyName: k.name } : {}), param: 'model' },
      );
    }
    return undefined;
  }
}
