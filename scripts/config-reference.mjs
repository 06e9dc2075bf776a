#!/usr/bin/env node
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` references are config syntax the page documents.
// Writes docs/configuration.md from @lb/config-env's own tables: every file key comes from the config schema
// (`configJsonSchema()`), every environment variable from its env tables (`ENV_GLOBALS`, `ENV_NUMBERED_FIELDS`,
// `ENV_VARS`), and every default the loader fills in from a config it compiles (`configFromEnv`). Only the meanings
// are written here, and packages/config-env/test/reference.test.ts fails when a key has none, when a meaning names a
// key the schema no longer has, or when the committed page differs from what this script writes.
//
//   node scripts/config-reference.mjs          regenerate docs/configuration.md (after `turbo run build`)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MB = (n) => `${n} (${(n / 1024 / 1024).toFixed(0)} MiB)`;
const ms = (n) => (n === undefined ? 'none' : `${n} ms`);

/**
 * Meanings of the file keys (schema paths: `[]` a list entry, `<name>` a table key), and defaults the compiled config
 * does not show (router defaults live in @lb/core). A function reads the default from a compiled config.
 * `[meaning, default?]`.
 */
const KEYS = {
  plugins: [
    'modules lb-server loads before it builds the router (strategies, guards, dialects): package names, resolved from the working directory as Node resolves them, or paths relative to it; see [plugins](getting-started-plugin.md)',
    'none',
  ],
  default_model: ['model for requests that name none', 'none'],
  hedge_after_ms: [
    'hedged requests: a request safe to send twice that has not answered after this many ms goes to the next-best endpoint too (env `LB_HEDGE_AFTER_MS`)',
    'off',
  ],
  hedge_after: ['hedged requests: the delay as the route\'s observed latency percentile (`"p95"`)', 'off'],
  hedge_budget: [
    'extra upstream requests hedges may add, share of a sliding minute (0..1; env `LB_HEDGE_BUDGET`)',
    '0.1',
  ],
  hedge_unsafe: ['hedge requests that are not safe to send twice too', 'false'],
  stream_continue: [
    'continue a chat stream that broke after content on another endpoint, in the same stream (env `LB_STREAM_CONTINUE`)',
    'false',
  ],
  strategy: [
    'how the router picks an endpoint: `priority`, `round-robin`, `weighted-random`, `random`, `least-latency`, `least-busy`, aliases (`weighted_failover`…), or a name a plugin registers',
    (c) => c.router.strategy,
  ],
  'strategy_options.within_group': [
    '`priority`: how to spread within the best priority group (`weighted-random` or `round-robin`)',
    '`weighted-random`',
  ],
  'strategy_options.exploration_rate': [
    '`least-latency`: share of picks that explore a random endpoint (0..1)',
    '0.05',
  ],
  max_retries: ['attempts after the first (0..100)', '3'],
  failover: ['retry a failed request on another endpoint', 'true'],
  timeout: ['per-attempt timeout of the router, ms (or `"30s"`)', 'none'],
  deadline: ["a request's overall deadline across its attempts, ms", '120000 ms'],
  'backoff.initial': ['first retry backoff, ms', '250 ms'],
  'backoff.max': ['longest retry backoff, ms', '8000 ms'],
  'backoff.multiplier': ['backoff growth per retry (≥ 1)', '2'],
  'backoff.jitter': ['random share of each backoff (0..1)', '0.5'],
  rate_limit_cooldown: [
    'how long an endpoint that answered 429 rests when it gives no `Retry-After`, ms',
    '1000 ms',
  ],
  max_cooldown: ['longest cooldown of an endpoint, ms', '60000 ms'],
  max_retry_after: ['longest upstream `Retry-After` honoured, ms', '600000 ms'],
  key_retire: ['how long a key that answered 401/403 stays out, ms', '300000 ms'],
  max_wait: ['longest a request waits for an endpoint to come free, ms', '10000 ms'],
  'breaker.enabled': ['circuit breaker per endpoint', (c) => c.breaker.enabled],
  'breaker.threshold': ['failures that open a circuit', (c) => c.breaker.threshold],
  'breaker.half_open_after': [
    'how long a circuit stays open before one trial request, ms',
    (c) => ms(c.breaker.halfOpenAfterMs),
  ],
  'breaker.policy': [
    '`consecutive` failures, or `sampling` (error rate over a window)',
    (c) => c.breaker.policy,
  ],
  'health_check.enabled': ['active health checks (`GET /models` per endpoint)', 'on when `interval` is set'],
  'health_check.interval': ['time between checks, ms', (c) => ms(c.healthCheck.intervalMs)],
  'health_check.timeout': ['timeout of one check, ms', (c) => ms(c.healthCheck.timeoutMs)],
  'server.host': ['interface to listen on (`0.0.0.0` in containers)', (c) => c.server.host],
  'server.port': ['port (0 picks a free one)', (c) => c.server.port],
  'server.timeout': ['upstream answer timeout per attempt, ms', (c) => ms(c.server.timeoutMs)],
  'server.connect_timeout': ['upstream connect timeout, ms', (c) => ms(c.server.connectTimeoutMs)],
  'server.stream_first_byte_timeout': [
    'time a stream may take to its first byte before failover, ms',
    (c) => ms(c.server.streamFirstByteTimeoutMs),
  ],
  'server.stream_idle_timeout': [
    'longest silence inside a stream, ms',
    (c) => ms(c.server.streamIdleTimeoutMs),
  ],
  'server.stream_probation_hold': [
    'how long a stream from an endpoint on stream probation is held back whole, ms (0: off)',
    (c) => ms(c.server.streamProbationHoldMs),
  ],
  'server.stream_probation_max_bytes': [
    'bytes all the streams held for probation keep together',
    (c) => MB(c.server.streamProbationMaxBytes),
  ],
  'server.max_event_bytes': [
    'largest server-sent event an upstream may send, bytes',
    (c) => MB(c.server.maxEventBytes),
  ],
  'server.body_limit': ['largest request body, bytes', (c) => MB(c.server.bodyLimitBytes)],
  'server.rate_limit.enabled': [
    'per-client rate limit of the gateway',
    (c) => c.server.clientRateLimit.enabled,
  ],
  'server.rate_limit.requests': ['requests per window per client', (c) => c.server.clientRateLimit.requests],
  'server.rate_limit.window': ['the window, ms', (c) => ms(c.server.clientRateLimit.windowMs)],
  'server.log_level': [
    '`fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`',
    (c) => c.server.logLevel,
  ],
  'server.request_log.enabled': ['one JSON line per request to a file', (c) => c.server.requestLog.enabled],
  'server.request_log.path': ['the file (setting it enables the log)', 'none'],
  'server.metrics_enabled': ['Prometheus `/metrics`', (c) => c.server.metricsEnabled],
  'server.response_headers': [
    '`x-lb-endpoint` and `x-lb-attempts` on proxied responses',
    (c) => c.server.responseHeaders,
  ],
  'server.shutdown_timeout': [
    'how long SIGTERM waits for in-flight requests, ms',
    (c) => ms(c.server.shutdownTimeoutMs),
  ],
  'server.api_keys': ['client keys the gateway accepts (none: open)', 'none (open)'],
  'server.admin_key': [
    'key for `/admin/*` on the main port (unset: admin only on the operations listener)',
    'none',
  ],
  'server.http2': ['offer HTTP/2 to https upstreams', 'true'],
  'server.connections_per_origin': ['keep-alive connections per upstream origin', 'unbounded'],
  'server.redis_url': [
    'Redis shared by replicas (rate limits, breaker changes); a secret, never echoed',
    'none (each replica alone)',
  ],
  'server.ops_port': [
    'port of the operations listener (admin, `/metrics`, `/stats`, detailed `/health`)',
    'none',
  ],
  'server.ops_host': ['interface of the operations listener', (c) => c.server.opsHost],
  'server.max_inflight_body_bytes': [
    'request bodies read at once, together (503 with `Retry-After` past it)',
    (c) => MB(c.server.maxInflightBodyBytes),
  ],
  'server.redis_command_timeout': [
    'a Redis command unanswered this long degrades the shared store, ms',
    (c) => ms(c.server.redisCommandTimeoutMs),
  ],
  'server.replicas': ['replicas sharing the budgets', 'counted by heartbeats in Redis'],
  'server.max_stream_duration': [
    'longest a stream may run before lb ends it with an SSE error (`upstream_stream_too_long`), ms (0: no limit)',
    (c) => ms(c.server.maxStreamDurationMs),
  ],
  fallbacks: [
    'model fallback chains: `"gpt-4o" = ["gpt-4o-mini"]` (group unavailable or `model_not_found`); `[fallbacks.context_window]` and `[fallbacks.content_policy]` for those errors; env `LB_FALLBACKS`, `LB_CONTEXT_WINDOW_FALLBACKS`, `LB_CONTENT_POLICY_FALLBACKS` (JSON)',
    'none',
  ],
  'endpoints[].name': ['identity: statistics and breaker state follow it across reloads; unique', 'required'],
  'endpoints[].id': ['a separate identity, if you want one', '`name`'],
  'endpoints[].base_url': ['http(s) base URL', 'required'],
  'endpoints[].api_key': ['the key (`"${ENV_VAR}"`); `""` for an upstream that needs none', 'required'],
  'endpoints[].provider': ['dialect: `openai`, `azure`, `anthropic`, or one a plugin registers', 'openai'],
  'endpoints[].models': ['models served', 'all'],
  'endpoints[].model_map': ['exposed model name → upstream model name', 'none'],
  'endpoints[].enabled': ['takes traffic', 'true'],
  'endpoints[].timeout': ['per-attempt timeout, ms', "the router's"],
  'endpoints[].timeout_seconds': ['the same, in seconds', "the router's"],
  'endpoints[].max_retries': ['kept in `meta.maxRetries` for transports that honour it', "the router's"],
  'endpoints[].priority': ['1 (highest) … 10', '1'],
  'endpoints[].weight': ['share within its priority (≥ 0; 0 drains)', '1'],
  'endpoints[].tags': ['labels requests can route by', 'none'],
  'endpoints[].max_rps': ['requests per second (0 = no limit)', 'no limit'],
  'endpoints[].max_rpm': ['requests per minute (0 = no limit)', 'no limit'],
  'endpoints[].max_tpm': ['tokens per minute (0 = no limit)', 'no limit'],
  'endpoints[].burst': ['burst of the rate limits', 'the limit'],
  'endpoints[].headers': ['extra upstream headers (secrets: never echoed)', 'none'],
  'endpoints[].health_check': ['path the health check requests', '/models'],
  'endpoints[].meta': ['free-form data for your own code', 'none'],
  'models.<name>.name': ['exposed model name', 'the table key'],
  'models.<name>.strategy': ["the group's strategy", 'the top-level `strategy`'],
  'models.<name>.enabled': ['the group is served', 'true'],
  'models.<name>.hedge_after_ms': ["the group's hedge delay, ms", 'the top-level `hedge_after_ms`'],
  'models.<name>.hedge_after': [
    "the group's hedge delay as a latency percentile",
    'the top-level `hedge_after`',
  ],
  'models.<name>.hedge_budget': ["the group's hedge budget", 'the top-level `hedge_budget`'],
  'models.<name>.hedge_unsafe': ['hedge every request of the group', 'the top-level `hedge_unsafe`'],
  'models.<name>.backends[].endpoint': ['endpoint `name`', 'required'],
  'models.<name>.backends[].provider': ['Berry spelling of `endpoint`', ''],
  'models.<name>.backends[].model': ['upstream model name on that endpoint', 'the exposed name'],
  'models.<name>.backends[].weight': ['weight in this group', "the endpoint's"],
  'models.<name>.backends[].priority': ['priority in this group', "the endpoint's"],
  'models.<name>.backends[].tags': ['labels', 'none'],
  'models.<name>.backends[].enabled': ['takes traffic in this group', 'true'],
  'keys[].name': ['shown in logs, stats and errors instead of the key; unique', 'required'],
  'keys[].key': ['the secret (`"${TEAM_A_KEY}"`)', 'one of `key`, `key_sha256`'],
  'keys[].key_sha256': [
    'SHA-256 of the key in hex, so the file holds no secret',
    'one of `key`, `key_sha256`',
  ],
  'keys[].models': ['models or model groups the key may use (else 403 `model_not_allowed`)', 'every model'],
  'keys[].tags': ['tags its requests route by', 'none'],
  'keys[].rps': ["the key's requests per second", 'no limit'],
  'keys[].rpm': ["the key's requests per minute", 'no limit'],
  'keys[].tpm': ["the key's tokens per minute, from real usage (then 429 `rate_limit_exceeded`)", 'no limit'],
  'keys[].budget_usd_day': ['USD per UTC day (then 429 `budget_exceeded`)', 'no budget'],
  'keys[].budget_usd_month': ['USD per calendar month', 'no budget'],
  'keys[].budget_tokens_day': ['tokens per UTC day', 'no budget'],
  'keys[].expires': ['`"2027-06-30"`, an ISO timestamp or epoch ms (then 401 `key_expired`)', 'never'],
};
const PRICE = {
  input: 'USD per 1M input tokens',
  output: 'USD per 1M output tokens',
  cached_input: 'USD per 1M cached input tokens',
  cache_write: 'USD per 1M tokens written to the cache',
  image: 'USD per image',
  audio_minute: 'USD per audio minute',
  characters: 'USD per 1M characters',
};
for (const [k, m] of Object.entries(PRICE)) {
  KEYS[`endpoints[].price.${k}`] = [
    `${m}, for every model of this endpoint (over \`[prices]\`)`,
    "the model's",
  ];
  KEYS[`prices.<name>.${k}`] = [m, "@lb/spend's table"];
}
/** Lists that take the same entries as another. */
const ALIASES = { providers: 'endpoints', 'models.<name>.providers': 'models.<name>.backends' };

/** Variables that are not one file key: the endpoint schemes and the file itself. */
const OTHER_ENV = {
  OPENAI_API_KEY: 'primary key (scheme 2: id `openai-primary`, priority 1)',
  OPENAI_API_KEY_FALLBACK_N:
    'fallback keys on the same base URL, in numeric order (ids `openai-fallback-N`, priority N + 1)',
  OPENAI_BASE_URL:
    'base URL of scheme 2 and of numbered endpoints without their own (default `https://api.openai.com/v1`)',
  OPENAI_KEY_ROTATION_ENABLED:
    'scheme 2: every key priority 1, taking turns (round-robin) instead of primary first',
  UPSTREAM_URL: 'scheme 3: one OpenAI-compatible upstream (id `upstream`)',
  UPSTREAM_API_KEY: 'scheme 3: its key (optional)',
  LB_CONFIG: 'a config file (TOML, JSON or YAML) to load, relative to the working directory',
};

/** Every key path of the schema: `[path, type]`, list entries as `[]`, table keys as `<name>`. */
export function schemaPaths(schema) {
  const out = [];
  const walk = (n, p) => {
    for (const [alias] of Object.entries(ALIASES)) if (p === alias) return;
    if (n?.type === 'object' && n.properties) {
      for (const [k, v] of Object.entries(n.properties)) walk(v, p ? `${p}.${k}` : k);
      return;
    }
    if (n?.type === 'array' && n.items?.type === 'object' && n.items.properties)
      return walk(n.items, `${p}[]`);
    if (n?.type === 'object' && n.additionalProperties?.properties)
      return walk(n.additionalProperties, `${p}.<name>`);
    out.push([p, typeOf(n)]);
  };
  walk(schema, '');
  return out;
}

function typeOf(n) {
  const t = n?.type ?? n?.anyOf?.map((x) => x.type).join(' or ') ?? 'any';
  if (t === 'array') return 'list';
  if (t === 'object') return 'table';
  return String(t).replace(/,/g, ' or ');
}

/** The keys with no meaning here, and meanings of keys the schema no longer has. */
export function coverage(ce) {
  const paths = schemaPaths(ce.configJsonSchema()).map(([p]) => p);
  return {
    missing: paths.filter((p) => !(p in KEYS)),
    stale: Object.keys(KEYS).filter((k) => !paths.includes(k)),
  };
}

const cell = (v) => String(v).replace(/\|/g, '\\|');
const docPath = (parts) => parts.join('.');

/** The page, from `@lb/config-env` (the module: its schema, env tables and compiler). */
export function render(ce) {
  const compiled = ce.configFromEnv({ UPSTREAM_URL: 'http://127.0.0.1:9/v1' });
  const envOf = new Map();
  for (const [name, { path: p, unit }] of Object.entries(ce.ENV_GLOBALS)) {
    const k = docPath(p);
    const text = `\`${name}\`${unit === 's' ? ' (seconds)' : ''}`;
    envOf.set(k, envOf.has(k) ? `${envOf.get(k)}, ${text}` : text);
  }
  const numbered = new Map(
    Object.entries(ce.ENV_NUMBERED_FIELDS).map(([f, key]) => [`endpoints[].${key}`, `OPENAI_${f}_N`]),
  );
  const lines = [
    '# Configuration reference',
    '',
    "<!-- Generated by scripts/config-reference.mjs from @lb/config-env's schema and env tables: do not edit by hand.",
    '     packages/config-env/test/reference.test.ts fails when this page is stale. -->',
    '',
    'Every setting of lb-server and `@lb/config-env`: the file key (TOML, JSON or YAML; `[]` is a list entry, `<name>`',
    'a table key), the environment variable that sets it, the default, and what it does. Environment settings fill in',
    'what a config file leaves out (the file wins); `${VAR}` / `${VAR:-default}` work in any file value; durations are',
    'ms as numbers, or text (`"30s"`, `"1m30s"`); numbers and booleans may be strings. A `.env` / `.env.local` file in',
    'the working directory is read under the real environment.',
    '',
    '## File keys and environment variables',
    '',
    '| file key | type | environment | default | meaning |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const [p, type] of schemaPaths(ce.configJsonSchema())) {
    const [meaning, def] = KEYS[p] ?? ['(no meaning written: see scripts/config-reference.mjs)', ''];
    const d = typeof def === 'function' ? def(compiled) : def;
    const env = envOf.get(p) ?? (numbered.has(p) ? `\`${numbered.get(p)}\` (numbered endpoints)` : '');
    lines.push(`| \`${cell(p)}\` | ${type} | ${cell(env)} | ${cell(d === '' ? '' : d)} | ${cell(meaning)} |`);
  }
  lines.push(
    '',
    ...Object.entries(ALIASES).map(
      ([a, of]) => `\`${a}\` takes the same entries as \`${of}\` (the spelling of Berry's configs).`,
    ),
    '',
    '## Endpoints and the config file from the environment',
    '',
    'Three schemes, combinable; they apply when no config file lists endpoints.',
    '',
    '| variable | meaning |',
    '| --- | --- |',
    ...Object.entries(ce.ENV_NUMBERED_FIELDS).map(
      ([f, key]) =>
        `| \`OPENAI_${f}_N\` | scheme 1, numbered endpoints (N = 1, 2, …; id \`openai-N\`): \`endpoints[].${key}\`${f === 'API_KEY' ? ' (required)' : ''} |`,
    ),
    ...Object.entries(OTHER_ENV).map(([k, m]) => `| \`${k}\` | ${cell(m)} |`),
    '',
  );
  const documented = lines.join('\n');
  const unlisted = ce.ENV_VARS.filter((v) => !documented.includes(`\`${v}\``));
  if (unlisted.length)
    lines.push(`Also read (no meaning written yet): ${unlisted.map((v) => `\`${v}\``).join(', ')}`, '');
  return lines.join('\n');
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PAGE = path.join(root, 'docs', 'configuration.md');

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const ce = await import(pathToFileURL(path.join(root, 'packages/config-env/dist/index.js')).href);
  const { missing, stale } = coverage(ce);
  if (missing.length || stale.length) {
    console.error(
      `config-reference: keys without a meaning: ${missing.join(', ') || 'none'}; stale: ${stale.join(', ') || 'none'}`,
    );
    process.exit(1);
  }
  fs.writeFileSync(PAGE, render(ce));
  console.log(`wrote ${path.relative(root, PAGE)}`);
}
