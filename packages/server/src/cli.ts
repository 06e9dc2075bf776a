#!/usr/bin/env node
import { createRequire } from 'node:module';
import { maskKey, type RouterConfig } from '@lb/core';
import { checkEndpoints, formatCheckTable } from './check.js';
import { describeConfigError, loadServerConfig, startupConfig } from './config.js';
import { startDemoUpstreams } from './demo.js';
import { createServer } from './index.js';
import { integrations } from './integrations.js';
import type { ServerConfigInput } from './options.js';
import { checkStrategies, type LoadedPlugin, type LoadedPlugins, loadPlugins } from './plugins.js';

const HELP = `lb-server — OpenAI-compatible load-balancing proxy

Usage:
  lb-server [--config FILE] [--port N] [--host H]   start the proxy
  lb-server --demo                                   start against built-in simulated upstreams (no keys needed)
  lb-server check [--config FILE]                    validate the config and probe every endpoint

Options:
  --config FILE   TOML, JSON or YAML config file (default: the environment, see below)
  --port N        port (env PORT, default 8080; 0 picks a free one)
  --host H        interface (env HOST, default 127.0.0.1)
  --demo[=auto]   demo mode; =auto only when nothing is configured
  -h, --help      this help
  -v, --version   version

Configure endpoints in the environment (or a .env file), e.g.
  OPENAI_API_KEY=sk-a OPENAI_API_KEY_FALLBACK_1=sk-b      several keys on one base URL (OPENAI_BASE_URL)
  OPENAI_API_KEY_1=… OPENAI_BASE_URL_1=… OPENAI_PRIORITY_1=1   numbered endpoints (_2, _3, …)
  UPSTREAM_URL=… UPSTREAM_API_KEY=…                        one OpenAI-compatible upstream
or in a TOML/JSON/YAML file given with --config (or LB_CONFIG). Gateway keys: LB_API_KEYS; admin key: LB_ADMIN_KEY.
Signals: SIGTERM/SIGINT drain in-flight requests (SHUTDOWN_TIMEOUT) and exit 0; SIGHUP reloads the config.`;

interface Args {
  command: 'serve' | 'check';
  config?: string;
  port?: number;
  host?: string;
  demo?: 'force' | 'auto';
  help?: boolean;
  version?: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { command: 'serve' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (arg === 'check' && i === 0) a.command = 'check';
    else if (flag === '--config' || flag === '-c') a.config = value();
    else if (flag === '--port' || flag === '-p') {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535)
        throw new Error(`--port: expected 0..65535, received ${JSON.stringify(v)}`);
      a.port = n;
    } else if (flag === '--host') a.host = value();
    else if (flag === '--demo') {
      if (inline !== undefined && inline !== 'auto' && inline !== 'true')
        throw new Error(`--demo: expected --demo or --demo=auto, received ${JSON.stringify(arg)}`);
      a.demo = inline === 'auto' ? 'auto' : 'force';
    } else if (arg === '-h' || arg === '--help') a.help = true;
    else if (arg === '-v' || arg === '--version') a.version = true;
    else throw new Error(`unknown argument ${JSON.stringify(arg)} (see lb-server --help)`);
  }
  return a;
}

function version(): string {
  try {
    return createRequire(import.meta.url)('../package.json').version as string;
  } catch {
    return '0.0.0';
  }
}

function describeEndpoint(e: RouterConfig['endpoints'][number], i: number): string {
  const id = e.id ?? e.name ?? `endpoint-${i + 1}`;
  const models = e.models?.length ? e.models.join(',') : 'all models';
  return `  • ${id.padEnd(14)} ${e.url}  key ${maskKey(e.apiKey) || '(none)'}  priority ${e.priority ?? 1} weight ${e.weight ?? 1}  ${models}${e.enabled === false ? '  (disabled)' : ''}`;
}

/** The demo's own defaults, for variables the environment leaves unset: a quieter log. */
const DEMO_ENV: Readonly<Record<string, string>> = { LOG_LEVEL: 'warn' };

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`lb-server: ${(e as Error).message}`);
    return 2;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  if (args.version) {
    console.log(version());
    return 0;
  }
  if (args.command === 'check') return check(args);

  // One trip to the config loader: is anything configured, and if so, the config (or what is wrong with it); for the
  // demo, the server's settings read from the environment by @lb/config-env's table (PORT, HOST, LOG_LEVEL).
  const maybeDemo = args.demo === 'force' || (args.demo === 'auto' && !args.config);
  const pre = await startupConfig({
    file: args.config,
    ...(maybeDemo ? { demo: { force: args.demo === 'force', defaults: DEMO_ENV } } : {}),
  });
  const demo = args.demo === 'force' || (maybeDemo && pre.present !== true);
  let config: ServerConfigInput;
  let closeDemo: (() => Promise<void>) | undefined;
  if (demo) {
    if (pre.error !== undefined || pre.settings === undefined) {
      console.error(describeConfigError(pre.error ?? new Error('the config loader returned no settings')));
      return 1;
    }
    const up = await startDemoUpstreams();
    closeDemo = up.close;
    const s = pre.settings;
    config = {
      router: { endpoints: up.endpoints, strategy: 'round-robin', backoff: { initialMs: 50, maxMs: 500 } },
      server: { port: s.port, host: s.host, logLevel: s.logLevel },
      breaker: { enabled: true, threshold: 3, halfOpenAfterMs: 5000 },
      healthCheck: { enabled: false },
    };
  } else {
    if (!args.config && pre.present !== true) {
      console.error(
        'lb-server: nothing is configured: no endpoint in the environment and no --config file.\n\n' +
          `${HELP}\n\nTry it without keys: lb-server --demo`,
      );
      return 1;
    }
    if (pre.error !== undefined || pre.config === undefined) {
      console.error(describeConfigError(pre.error ?? new Error('the config loader returned no config')));
      return 1;
    }
    config = pre.config;
  }
  // Plugins (config `plugins`, env LB_PLUGINS) register their strategies and dialects before the router is built.
  let plugins: LoadedPlugins | undefined;
  try {
    plugins = await withPlugins(config);
  } catch (e) {
    console.error(describeConfigError(e));
    await closeDemo?.();
    return 1;
  }
  for (const w of (config as { warnings?: readonly { path: string; message: string }[] }).warnings ?? [])
    console.warn(`lb-server: warning: ${w.path}: ${w.message}`);
  // --port/--host win over the config, at start and on every reload (so a reload never reports them as changed).
  const withArgs = <C extends ServerConfigInput>(c: C): C => ({
    ...c,
    server: {
      ...c.server,
      ...(args.port !== undefined ? { port: args.port } : {}),
      ...(args.host !== undefined ? { host: args.host } : {}),
    },
  });
  // A reload loads the modules newly listed (a failing one fails the reload, config unchanged) and, once the new
  // config is in, swaps the plugin guards; a module already loaded is not re-imported (changing its code needs a
  // restart), and the strategies and dialects of a module no longer listed stay registered, unused unless named.
  let pending: LoadedPlugins | undefined;
  const server = createServer({
    ...withArgs(config),
    version: version(),
    reloadConfig: demo
      ? undefined
      : async () => {
          const next = await loadServerConfig({ file: args.config });
          pending = await withPlugins(next);
          return withArgs(next);
        },
  });
  let detachGuards = plugins?.attach(server.router);
  server.router.on('config:reloaded', () => {
    if (!pending) return;
    detachGuards?.();
    detachGuards = pending.attach(server.router);
    plugins = pending;
    pending = undefined;
  });
  let url: string;
  try {
    url = await server.listen();
  } catch (e) {
    console.error(
      `lb-server: cannot listen on ${server.settings.host}:${server.settings.port}: ${(e as Error).message}`,
    );
    await server.close(0);
    await closeDemo?.();
    return 1;
  }
  const lines = [
    `lb-server ${version()} listening on ${url}  (OpenAI base URL: ${url}/v1)`,
    ...(server.opsUrl ? [`operations listener (admin, /metrics, /stats, /health) on ${server.opsUrl}`] : []),
    modeLine(args, demo, config),
    ...(plugins?.modules.length
      ? [`plugins: ${plugins.modules.map((m) => `${m.spec} (${describePlugin(m)})`).join('; ')}`]
      : []),
    `${config.router.endpoints.length} endpoint(s), strategy ${server.router.strategy}:`,
    ...config.router.endpoints.map(describeEndpoint),
  ];
  const redisUrl = server.settings.redisUrl;
  if (redisUrl !== undefined)
    lines.push(`rate limits and breaker changes shared in Redis: ${maskUrl(redisUrl)}`);
  if (demo) {
    lines.push(
      '',
      'Demo mode: three simulated upstreams (healthy, flaky, slow) on 127.0.0.1. Try:',
      `  curl ${url}/v1/chat/completions -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'`,
      `  curl ${url}/health     # per-endpoint state, breaker, success rate`,
      `  curl ${url}/metrics    # Prometheus`,
    );
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      console.error(`lb-server: ${signal} again, exiting now`);
      process.exit(1);
    }
    stopping = true;
    console.log(`lb-server: ${signal} received, draining ${server.inFlight} in-flight request(s)…`);
    const r = await server.close();
    await closeDemo?.();
    console.log(
      r.drained ? 'lb-server: drained, bye' : `lb-server: shutdown timeout, cut ${r.cut} request(s)`,
    );
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (demo) return;
    server.reload().then(
      (c) =>
        console.log(
          `lb-server: reloaded (added ${c.added.length}, removed ${c.removed.length}, changed ${c.changed.length}` +
            `${c.applied.length ? `; settings applied: ${c.applied.join(', ')}` : ''})` +
            `${c.restartRequired.length ? `; needs a restart to change: ${c.restartRequired.join(', ')}` : ''}`,
        ),
      (e) => console.error(`lb-server: reload failed, config unchanged:\n${describeConfigError(e)}`),
    );
  });
  // The ready line goes out only once the signal handlers are in place: a supervisor that sends SIGTERM as soon as
  // it reads "listening" must get a drain, not the default kill.
  console.log(lines.join('\n'));
  return -1;
}

/** Which mode the server runs in, and why: `--demo=auto` (`pnpm start`) proxies for real once anything is configured. */
function modeLine(args: Pick<Args, 'demo' | 'config'>, demo: boolean, config: ServerConfigInput): string {
  if (demo)
    return args.demo === 'force'
      ? 'mode: demo (--demo): simulated upstreams, no key is used'
      : 'mode: demo (--demo=auto, and nothing is configured: no endpoint in the environment or .env, no --config, no LB_CONFIG)';
  const src = (config as { source?: { kind?: string; path?: string; schemes?: readonly string[] } }).source;
  const from =
    src?.kind === 'file'
      ? `the config file ${src.path ?? args.config ?? ''}`.trimEnd()
      : `the environment${src?.schemes?.length ? ` (${src.schemes.join(', ')})` : ''}, .env included`;
  return args.demo === 'auto'
    ? `mode: proxy, not demo: --demo=auto found endpoints configured in ${from}, so requests go to them with their keys (force the demo with lb-server --demo, or pnpm dev)`
    : `mode: proxy, configured from ${from}`;
}

/** Loads the plugins a config lists (from the working directory) and checks its strategy names against them. */
async function withPlugins(config: ServerConfigInput): Promise<LoadedPlugins | undefined> {
  const specs = (config as { plugins?: readonly string[] }).plugins;
  const plugins = specs?.length ? await loadPlugins(specs, { cwd: process.cwd() }) : undefined;
  checkStrategies(config.router, plugins);
  return plugins;
}

function describePlugin(m: LoadedPlugin): string {
  const parts = [
    m.strategies.length ? `strategies ${m.strategies.join(', ')}` : '',
    m.guards.length ? `guards ${m.guards.join(', ')}` : '',
    m.dialects.length ? `dialects ${m.dialects.join(', ')}` : '',
  ].filter(Boolean);
  return parts.join('; ');
}

async function check(args: Args): Promise<number> {
  let config: ServerConfigInput;
  try {
    config = await loadServerConfig({ file: args.config });
    await withPlugins(config);
  } catch (e) {
    console.error(describeConfigError(e));
    return 1;
  }
  const all = config.router.endpoints;
  if (!all.length) {
    console.error('lb-server check: no endpoint configured');
    return 1;
  }
  // Disabled endpoints take no traffic: probing them would only count them as failures.
  const eps = all.filter((e) => e.enabled !== false);
  const skipped = all.length - eps.length;
  const skippedIds = all.flatMap((e, i) =>
    e.enabled === false ? [e.id ?? e.name ?? `endpoint-${i + 1}`] : [],
  );
  console.log(
    `config ok: ${all.length} endpoint(s)${skipped ? `; skipping ${skipped} disabled (${skippedIds.join(', ')})` : ''}.` +
      (eps.length ? ' Probing each enabled one with one request…\n' : ''),
  );
  if (!eps.length) {
    console.error('lb-server check: every endpoint is disabled: nothing to probe');
    return 1;
  }
  const results = await checkEndpoints(eps, { dialect: integrations.dialect });
  console.log(formatCheckTable(results));
  const bad = results.filter((r) => !r.ok).length;
  console.log(
    bad ? `\n${bad} of ${results.length} endpoint(s) failed` : `\nall ${results.length} endpoint(s) answered`,
  );
  return bad ? 1 : 0;
}

main().then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e) => {
    console.error(`lb-server: ${(e as Error)?.stack ?? e}`);
    process.exitCode = 1;
  },
);

/** A URL without its credentials (a Redis URL may carry a password). */
function maskUrl(u: string): string {
  try {
    const x = new URL(u);
    if (x.password || x.username) {
      x.username = x.username ? '***' : '';
      x.password = x.password ? '***' : '';
    }
    return x.toString();
  } catch {
    return '(unparsable URL)';
  }
}
