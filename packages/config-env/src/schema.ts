/**
 * The config document's schema (snake_case keys, as in TOML/JSON/YAML files and as the env schemes produce it).
 * Numbers, booleans and durations may be given as strings, so `${VAR}` references and env values work anywhere.
 */
import { strategyNames } from '@lb/core';
import { parseEnvBool, parseEnvDuration, parseEnvNumber } from '@lb/core/internal';
import * as z from 'zod';
import { fallbacksSchema } from './fallbacks.js';
import { didYouMean, show } from './issues.js';

/** Marks a message that carries one issue per unknown key (split apart by the validator). */
export const UNKNOWN_KEYS = '\u0000unknown:';

type Iss = { input?: unknown };
const expected = (what: string) => (iss: Iss) =>
  iss.input === undefined ? `missing: expected ${what}` : `expected ${what}, received ${show(iss.input)}`;

/** Where keys of nested sections live, to point a misplaced key to its home. */
const HOMES = new Map<string, string>();

function obj<S extends z.ZodRawShape>(shape: S, home?: string) {
  const known = Object.keys(shape);
  if (home) for (const k of known) if (!HOMES.has(k)) HOMES.set(k, home);
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') {
        const entries = (iss.keys as string[]).map((k) => {
          let hint = didYouMean(k, known);
          if (!hint) {
            const h = HOMES.get(k);
            if (h && h !== home) hint = `; it belongs in ${h}`;
          }
          return [k, `unknown key${hint}`];
        });
        return UNKNOWN_KEYS + JSON.stringify(entries);
      }
      if (iss.code === 'invalid_type') return expected('a table')(iss);
      return undefined;
    },
  });
}

// Text (from the environment, or quoted in a file) is read by the rules every package reads variables by.
const toNumber = (v: unknown) => (typeof v === 'string' ? (parseEnvNumber(v) ?? v) : v);

function num(what: string, o: { min?: number; max?: number; gt?: number; int?: boolean } = {}) {
  const e = { error: expected(what) };
  let s = z.number(e);
  if (o.int) s = s.int(e);
  if (o.min !== undefined) s = s.min(o.min, e);
  if (o.gt !== undefined) s = s.gt(o.gt, e);
  if (o.max !== undefined) s = s.max(o.max, e);
  return z.preprocess(toNumber, s);
}

const toMs = (v: unknown) => (typeof v === 'string' ? (parseEnvDuration(v, 'ms') ?? v) : v);

/** Milliseconds, or text like `30s`, `1m30s`, `500ms`, `1h`. */
function duration(o: { positive?: boolean } = {}) {
  const what = `a duration ${o.positive ? '> 0 ' : ''}in ms (or text like "30s")`;
  const e = { error: expected(what) };
  const s = o.positive ? z.number(e).gt(0, e) : z.number(e).min(0, e);
  return z.preprocess(toMs, s);
}

const bool = z.preprocess(
  (v) => (typeof v === 'string' ? (parseEnvBool(v) ?? v) : v),
  z.boolean({ error: expected('true or false') }),
);

const str = z.string({ error: expected('a string') });
const nonEmpty = str.min(1, { error: 'must not be empty' });
/** A secret: type errors never echo the value. */
const secret = z.string({
  error: (iss) => (iss.input === undefined ? 'missing' : `expected a string, received ${typeof iss.input}`),
});

const list = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : v,
  z.array(nonEmpty, { error: expected('a list of strings (or a comma-separated string)') }),
);

const stringMap = z.record(str, str, { error: expected('a table of strings') });

const url = str.superRefine((s, ctx) => {
  let u: URL | undefined;
  try {
    u = new URL(s);
  } catch {}
  if (!u || !/^[a-z][\w+.-]*:\/\/./i.test(s))
    ctx.addIssue({ code: 'custom', message: `not a URL: ${show(s)}` });
  else if (u.protocol !== 'http:' && u.protocol !== 'https:')
    ctx.addIssue({ code: 'custom', message: `not an http(s) URL: ${show(s)}` });
});

/** A Redis URL. Never echoed: it may carry a password. */
const redisUrl = str.superRefine((s, ctx) => {
  let u: URL | undefined;
  try {
    u = new URL(s);
  } catch {}
  if (!u || (u.protocol !== 'redis:' && u.protocol !== 'rediss:'))
    ctx.addIssue({
      code: 'custom',
      message: 'expected a redis:// or rediss:// URL (the value is not shown: it may hold a password)',
    });
});

/** Strategy names from other gateways (Berry's `weighted_failover`…) → ours. */
const STRATEGY_ALIASES: Record<string, string> = {
  'weighted-failover': 'priority',
  'smart-ai': 'least-latency',
  'least-requests': 'least-busy',
};

/** Normalises a strategy name (`weighted_random` → `weighted-random`); undefined when unknown. */
export function normalizeStrategy(name: string): string | undefined {
  const known = strategyNames();
  if (known.includes(name)) return name;
  const n = name.trim().toLowerCase().replace(/_/g, '-');
  if (known.includes(n)) return n;
  return STRATEGY_ALIASES[n];
}

const strategy = str.superRefine((s, ctx) => {
  if (normalizeStrategy(s) === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `unknown strategy ${show(s)}${didYouMean(s, strategyNames()).replace(/^; (.*)$/, ' ($1)')}; known: ${strategyNames().join(', ')}`,
    });
  }
});

const priority = num('an integer from 1 to 10', { int: true, min: 1, max: 10 });
const weight = num('a number >= 0', { min: 0 });
const rate = num('a number >= 0 (0 = no limit)', { min: 0 });

const usd = num('a number of USD >= 0', { min: 0 });

/** A price: USD per 1M tokens, or per unit (`[prices."model"]`, an endpoint's `price = { … }`). */
export const priceSchema = obj(
  {
    input: usd.optional(),
    output: usd.optional(),
    cached_input: usd.optional(),
    cache_write: usd.optional(),
    image: usd.optional(),
    audio_minute: usd.optional(),
    characters: usd.optional(),
  },
  '[prices."<model>"] or an endpoint\'s price',
);

/** `expires`: a date (a TOML date too: it lasts through that day, UTC), an ISO timestamp, or epoch ms. */
const expiry = z.preprocess(
  (v) => {
    if (v instanceof Date) {
      // smol-toml's TomlDate: a local date (no time) stays a day.
      const d = v as Date & { isDate?: () => boolean };
      return d.isDate?.() ? v.toISOString().slice(0, 10) : v.toISOString();
    }
    return v;
  },
  z
    .union([z.string(), z.number()], {
      error: expected('a date ("2027-06-30"), an ISO timestamp or epoch ms'),
    })
    .refine(
      (v) =>
        Number.isFinite(
          typeof v === 'number' ? v : Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v),
        ),
      {
        error: (iss) =>
          `expected a date ("2027-06-30"), an ISO timestamp or epoch ms, received ${show(iss.input)}`,
      },
    ),
);

/** One client key (`[[keys]]`). */
export const keySchema = obj(
  {
    name: nonEmpty,
    key: secret.min(1, { error: 'must not be empty' }).optional(),
    key_sha256: str
      .regex(/^[0-9a-fA-F]{64}$/, { error: 'expected 64 hex digits (the SHA-256 of the key)' })
      .optional(),
    models: list.optional(),
    tags: list.optional(),
    rps: rate.optional(),
    rpm: rate.optional(),
    tpm: rate.optional(),
    budget_usd_day: usd.optional(),
    budget_usd_month: usd.optional(),
    budget_tokens_day: num('an integer >= 0', { int: true, min: 0 }).optional(),
    expires: expiry.optional(),
  },
  'each [[keys]] entry',
);

export const endpointShape = {
  name: nonEmpty,
  id: nonEmpty.optional(),
  base_url: url,
  api_key: secret.optional(),
  provider: nonEmpty.optional(),
  models: list.optional(),
  model_map: stringMap.optional(),
  enabled: bool.optional(),
  timeout: duration({ positive: true }).optional(),
  timeout_seconds: num('a number of seconds > 0', { gt: 0 }).optional(),
  max_retries: num('an integer >= 0', { int: true, min: 0 }).optional(),
  priority: priority.optional(),
  weight: weight.optional(),
  tags: list.optional(),
  max_rps: rate.optional(),
  max_rpm: rate.optional(),
  max_tpm: rate.optional(),
  burst: num('an integer >= 1', { int: true, min: 1 }).optional(),
  headers: z.record(str, secret, { error: expected('a table of strings') }).optional(),
  health_check: str
    .regex(/^\//, { error: (iss) => `expected a path starting with "/", received ${show(iss.input)}` })
    .optional(),
  meta: z.record(str, z.unknown(), { error: expected('a table') }).optional(),
  price: priceSchema.optional(),
};

export const endpointSchema = obj(endpointShape, 'each [[endpoints]] entry');

const backendSchema = obj({
  endpoint: nonEmpty.optional(),
  provider: nonEmpty.optional(),
  model: nonEmpty.optional(),
  weight: weight.optional(),
  priority: priority.optional(),
  tags: list.optional(),
  enabled: bool.optional(),
});

/** Hedged requests (`hedge.md` of the issue): top-level and per model group. */
const percentile = str.refine(
  (v) => /^p?\d{1,2}(\.\d+)?$/i.test(v.trim()) && Number(v.trim().replace(/^p/i, '')) > 0,
  {
    message: 'expected a percentile such as "p95"',
  },
);
const hedgeFields = {
  hedge_after_ms: num('a number of ms >= 0 (0: off)', { min: 0 }).optional(),
  hedge_after: percentile.optional(),
  hedge_budget: num('a share from 0 to 1', { min: 0, max: 1 }).optional(),
  hedge_unsafe: bool.optional(),
};

const groupSchema = obj({
  ...hedgeFields,
  name: nonEmpty.optional(),
  strategy: strategy.optional(),
  enabled: bool.optional(),
  backends: z.array(backendSchema, { error: expected('a list of backends') }).optional(),
  providers: z.array(backendSchema, { error: expected('a list of backends') }).optional(),
});

const breakerSchema = obj(
  {
    enabled: bool.optional(),
    threshold: num('an integer >= 1', { int: true, min: 1 }).optional(),
    half_open_after: duration({ positive: true }).optional(),
    policy: z
      .enum(['consecutive', 'sampling'], { error: expected('"consecutive" or "sampling"') })
      .optional(),
  },
  '[breaker]',
);

const healthSchema = obj(
  {
    enabled: bool.optional(),
    interval: duration({ positive: true }).optional(),
    timeout: duration({ positive: true }).optional(),
  },
  '[health_check]',
);

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const serverSchema = obj(
  {
    host: nonEmpty.optional(),
    port: num('an integer from 0 to 65535', { int: true, min: 0, max: 65535 }).optional(),
    timeout: duration({ positive: true }).optional(),
    connect_timeout: duration({ positive: true }).optional(),
    stream_first_byte_timeout: duration({ positive: true }).optional(),
    stream_idle_timeout: duration({ positive: true }).optional(),
    stream_probation_hold: duration().optional(),
    stream_probation_max_bytes: num('a number of bytes > 0', { int: true, gt: 0 }).optional(),
    max_event_bytes: num('a number of bytes > 0', { int: true, gt: 0 }).optional(),
    max_stream_duration: duration().optional(),
    body_limit: num('a number of bytes > 0', { int: true, gt: 0 }).optional(),
    rate_limit: obj(
      {
        enabled: bool.optional(),
        requests: num('an integer >= 1', { int: true, min: 1 }).optional(),
        window: duration({ positive: true }).optional(),
      },
      '[server.rate_limit]',
    ).optional(),
    log_level: z
      .preprocess(
        (v) => (typeof v === 'string' ? v.trim().toLowerCase() : v),
        z.enum(LOG_LEVELS, { error: expected(`one of ${LOG_LEVELS.join(', ')}`) }),
      )
      .optional(),
    request_log: obj(
      { enabled: bool.optional(), path: nonEmpty.optional() },
      '[server.request_log]',
    ).optional(),
    metrics_enabled: bool.optional(),
    response_headers: bool.optional(),
    shutdown_timeout: duration().optional(),
    api_keys: z
      .preprocess(
        (v) =>
          typeof v === 'string'
            ? v
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean)
            : Array.isArray(v)
              ? v.filter((k) => k !== '')
              : v,
        z.array(secret, { error: expected('a list of keys') }),
      )
      .optional(),
    admin_key: secret.min(1, { error: 'must not be empty' }).optional(),
    http2: bool.optional(),
    connections_per_origin: num('an integer >= 1', { int: true, min: 1 }).optional(),
    redis_url: redisUrl.optional(),
    ops_port: num('an integer from 0 to 65535', { int: true, min: 0, max: 65535 }).optional(),
    ops_host: nonEmpty.optional(),
    max_inflight_body_bytes: num('a number of bytes > 0', { int: true, gt: 0 }).optional(),
    redis_command_timeout: duration({ positive: true }).optional(),
    replicas: num('an integer >= 1', { int: true, min: 1 }).optional(),
  },
  '[server]',
);

export const documentSchema = obj({
  /**
   * Plugin modules lb-server loads before it builds the router (strategies, guards, dialects): package names (resolved
   * from the working directory as Node resolves them) or paths relative to the working directory.
   */
  plugins: list.optional(),
  ...hedgeFields,
  stream_continue: bool.optional(),
  default_model: nonEmpty.optional(),
  strategy: strategy.optional(),
  strategy_options: obj({
    within_group: z
      .enum(['weighted-random', 'round-robin'], { error: expected('"weighted-random" or "round-robin"') })
      .optional(),
    exploration_rate: num('a number from 0 to 1', { min: 0, max: 1 }).optional(),
  }).optional(),
  max_retries: num('an integer from 0 to 100', { int: true, min: 0, max: 100 }).optional(),
  failover: bool.optional(),
  timeout: duration({ positive: true }).optional(),
  deadline: duration({ positive: true }).optional(),
  backoff: obj({
    initial: duration().optional(),
    max: duration().optional(),
    multiplier: num('a number >= 1', { min: 1 }).optional(),
    jitter: num('a number from 0 to 1', { min: 0, max: 1 }).optional(),
  }).optional(),
  rate_limit_cooldown: duration().optional(),
  max_cooldown: duration().optional(),
  max_retry_after: duration().optional(),
  key_retire: duration().optional(),
  max_wait: duration().optional(),
  breaker: breakerSchema.optional(),
  health_check: healthSchema.optional(),
  server: serverSchema.optional(),
  endpoints: z.array(endpointSchema, { error: expected('a list of endpoints') }).optional(),
  providers: z.array(endpointSchema, { error: expected('a list or table of endpoints') }).optional(),
  models: z.record(str, groupSchema, { error: expected('a table of model groups') }).optional(),
  keys: z.array(keySchema, { error: expected('a list of keys ([[keys]] entries)') }).optional(),
  prices: z.record(str, priceSchema, { error: expected('a table of prices by model') }).optional(),
  fallbacks: fallbacksSchema.optional(),
});

/** The validated document. */
export type ConfigDocument = z.output<typeof documentSchema>;
/** The document as written in a file (every field optional, strings accepted for numbers). */
export type ConfigDocumentInput = z.input<typeof documentSchema>;

/**
 * A JSON Schema (draft 2020-12) of the config file, for editors (`"$schema"` in JSON, `#:schema` in TOML via Taplo,
 * `# yaml-language-server: $schema=` in YAML).
 *
 * @example
 * fs.writeFileSync('lb.schema.json', JSON.stringify(configJsonSchema(), null, 2));
 */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(documentSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
