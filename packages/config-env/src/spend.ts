/**
 * Virtual keys (`[[keys]]`) and prices (`[prices."model"]`, an endpoint's `price`): the checks that span several
 * values, and the plain config `@lb/spend` takes (its `KeyConfig` and `PriceInput` shapes).
 */
import { type ConfigIssue, formatPath, show } from './issues.js';
import type { ConfigDocument } from './schema.js';

/** A price as `@lb/spend` reads it: USD per 1M tokens (`input`, `cachedInput`, `cacheWrite`, `output`) or per unit. */
export interface PriceConfig {
  input?: number;
  cachedInput?: number;
  cacheWrite?: number;
  output?: number;
  /** USD per image. */
  image?: number;
  /** USD per minute of audio. */
  audioMinute?: number;
  /** USD per 1M characters of speech. */
  characters?: number;
}

/** One client key (`[[keys]]`), as `@lb/spend`'s `KeyRing` takes it. */
export interface VirtualKeyConfig {
  name: string;
  /** The secret (from `key`, usually `${ENV_VAR}`). One of `key` / `keySha256`. */
  key?: string;
  /** SHA-256 of the secret, hex (`key_sha256`). */
  keySha256?: string;
  models?: string[];
  tags?: string[];
  rps?: number;
  rpm?: number;
  tpm?: number;
  budgetUsdDay?: number;
  budgetUsdMonth?: number;
  budgetTokensDay?: number;
  /** `2027-06-30` (through that day, UTC), an ISO timestamp, or epoch ms. */
  expires?: string | number;
}

/** Virtual keys and prices (config `[[keys]]`, `[prices."model"]`). Endpoint prices land in `endpoint.meta.price`. */
export interface SpendConfig {
  /** Named client keys. File `[[keys]]`. (Unnamed keys stay in `server.apiKeys`, env `LB_API_KEYS`.) */
  keys: VirtualKeyConfig[];
  /** Prices by model over `@lb/spend`'s shipped table. File `[prices."<model>"]`. */
  prices: Record<string, PriceConfig>;
}

type Doc = Record<string, unknown>;
const isTable = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Secrets of the `[[keys]]` entries, so that no message echoes one. */
export function spendSecrets(doc: Doc): string[] {
  if (!Array.isArray(doc.keys)) return [];
  return doc.keys.flatMap((k) => (isTable(k) && typeof k.key === 'string' ? [k.key] : []));
}

/** Checks across `[[keys]]` entries: one of key / key_sha256, unique names and secrets, expiry in the past. */
export function checkSpend(doc: Doc, errors: ConfigIssue[], warnings: ConfigIssue[], now = Date.now()): void {
  if (!Array.isArray(doc.keys)) return;
  const names = new Map<string, string>();
  const secrets = new Map<string, string>();
  doc.keys.forEach((k, i) => {
    if (!isTable(k)) return;
    const at = (...p: PropertyKey[]) => formatPath(['keys', i, ...p]);
    if (k.key !== undefined && k.key_sha256 !== undefined) {
      errors.push({ path: at('key_sha256'), message: 'set both key and key_sha256; keep one' });
    } else if (k.key === undefined && k.key_sha256 === undefined) {
      errors.push({
        path: at('key'),
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the message shows the file syntax.
        message: 'missing: set key = "${ENV_VAR}" or key_sha256 = "<64 hex digits>"',
      });
    }
    if (typeof k.name === 'string') {
      const prev = names.get(k.name);
      if (prev)
        errors.push({ path: at('name'), message: `duplicate key name ${show(k.name)} (also ${prev})` });
      else names.set(k.name, at());
    }
    const secret = typeof k.key === 'string' && k.key ? k.key : undefined;
    const sha = typeof k.key_sha256 === 'string' ? `sha256:${k.key_sha256.toLowerCase()}` : undefined;
    for (const [s, field] of [
      [secret, 'key'],
      [sha, 'key_sha256'],
    ] as const) {
      if (s === undefined) continue;
      const prev = secrets.get(s);
      if (prev) errors.push({ path: at(field), message: `the same key as ${prev}` });
      else secrets.set(s, at());
    }
    const e = k.expires;
    const t =
      typeof e === 'number'
        ? e
        : typeof e === 'string'
          ? /^\d{4}-\d{2}-\d{2}$/.test(e)
            ? Date.parse(`${e}T00:00:00Z`) + 86_400_000
            : Date.parse(e)
          : e instanceof Date
            ? e.getTime()
            : Number.NaN;
    if (Number.isFinite(t) && t <= now) {
      warnings.push({
        path: at('expires'),
        message: 'already expired: the key is refused (401 key_expired)',
      });
    }
  });
}

/** A validated price table → `@lb/spend`'s `PriceInput`. */
export function toPriceConfig(p: NonNullable<ConfigDocument['prices']>[string]): PriceConfig {
  const out: PriceConfig = {};
  if (p.input !== undefined) out.input = p.input;
  if (p.cached_input !== undefined) out.cachedInput = p.cached_input;
  if (p.cache_write !== undefined) out.cacheWrite = p.cache_write;
  if (p.output !== undefined) out.output = p.output;
  if (p.image !== undefined) out.image = p.image;
  if (p.audio_minute !== undefined) out.audioMinute = p.audio_minute;
  if (p.characters !== undefined) out.characters = p.characters;
  return out;
}

/** The `spend` part of the config, or undefined when the document has neither `[[keys]]` nor `[prices]`. */
export function buildSpend(doc: ConfigDocument): SpendConfig | undefined {
  if (doc.keys === undefined && doc.prices === undefined) return undefined;
  const keys = (doc.keys ?? []).map((k) => {
    const out: VirtualKeyConfig = { name: k.name };
    if (k.key !== undefined) out.key = k.key;
    if (k.key_sha256 !== undefined) out.keySha256 = k.key_sha256.toLowerCase();
    if (k.models?.length) out.models = k.models;
    if (k.tags?.length) out.tags = k.tags;
    if (k.rps) out.rps = k.rps;
    if (k.rpm) out.rpm = k.rpm;
    if (k.tpm) out.tpm = k.tpm;
    if (k.budget_usd_day !== undefined) out.budgetUsdDay = k.budget_usd_day;
    if (k.budget_usd_month !== undefined) out.budgetUsdMonth = k.budget_usd_month;
    if (k.budget_tokens_day !== undefined) out.budgetTokensDay = k.budget_tokens_day;
    if (k.expires !== undefined) out.expires = k.expires;
    return out;
  });
  const prices: Record<string, PriceConfig> = {};
  for (const [model, p] of Object.entries(doc.prices ?? {})) prices[model] = toPriceConfig(p);
  return { keys, prices };
}
