import { createRequire } from 'node:module';
import { maskKey, redact } from '@lb/core';
import type { DestinationStream, Logger, default as pinoFn } from 'pino';

type Pino = typeof pinoFn;
let pinoModule: Pino | undefined;
/**
 * pino, loaded on the first line actually logged: a proxy that logs nothing at its level (the default: warnings and
 * errors only happen when something fails) never holds pino, sonic-boom and thread-stream (~2.5 MB of idle RSS).
 */
export function loadPino(): Pino {
  return (pinoModule ??= createRequire(import.meta.url)('pino') as Pino);
}

const LEVEL_VALUES: Readonly<Record<string, number>> = {
  fatal: 60,
  error: 50,
  warn: 40,
  info: 30,
  debug: 20,
  trace: 10,
};
const noop = () => {};

/**
 * A pino `Logger` that creates the real one (`make`) on the first call at an enabled level, or on any other use
 * (a property, `level` set, a pino method this facade does not know). Below the level, calls are free.
 */
function lazyLogger(level: string, make: () => Logger): Logger {
  let real: Logger | undefined;
  const materialise = () => (real ??= make());
  const threshold = LEVEL_VALUES[level] ?? Number.POSITIVE_INFINITY;
  const own: Record<string, unknown> = {
    child(bindings: Record<string, unknown>, options?: { level?: string }) {
      if (real) return real.child(bindings, options);
      return lazyLogger(options?.level ?? level, () => materialise().child(bindings, options));
    },
  };
  for (const name in LEVEL_VALUES) {
    own[name] =
      LEVEL_VALUES[name] >= threshold
        ? (...args: unknown[]) =>
            (materialise() as unknown as Record<string, (...a: unknown[]) => void>)[name](...args)
        : noop;
  }
  return new Proxy(own, {
    get(target, prop) {
      if (real === undefined && typeof prop === 'string' && prop in target) return target[prop];
      if (prop === 'level' && real === undefined) return level;
      const r = materialise() as unknown as Record<string | symbol, unknown>;
      const v = r[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(r) : v;
    },
    set(_target, prop, value) {
      (materialise() as unknown as Record<string | symbol, unknown>)[prop] = value;
      return true;
    },
  }) as unknown as Logger;
}

export const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Paths pino censors: a second net behind "never log a key". */
export const REDACT_PATHS = [
  'authorization',
  'apiKey',
  'api_key',
  'key',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers["api-key"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["api-key"]',
  'req.headers.cookie',
  '*.authorization',
  '*.apiKey',
  '*.api_key',
];

/**
 * Does `DEBUG` turn on the `lb:routing` namespace? Follows the `debug` package's grammar: comma or space separated
 * patterns, `*` wildcards, `-` excludes.
 */
export function debugEnabled(debug: string | undefined, namespace: string): boolean {
  if (!debug) return false;
  let on = false;
  for (const raw of debug.split(/[\s,]+/)) {
    if (!raw) continue;
    const neg = raw[0] === '-';
    const pat = neg ? raw.slice(1) : raw;
    const re = new RegExp(`^${pat.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    if (re.test(namespace)) {
      if (neg) return false;
      on = true;
    }
  }
  return on;
}

export interface LoggerParts {
  logger: Logger;
  /** Child logger for routing decisions, at `debug` when `DEBUG` asks for it; undefined otherwise. */
  routing: Logger | undefined;
  flush(): Promise<void>;
}

/** Builds the server's logger. `secrets()` returns the keys currently configured (to scrub from error text). */
export function createLogger(
  level: string,
  debug: string | undefined,
  destination: NodeJS.WritableStream | undefined,
  secrets: () => readonly string[],
): LoggerParts {
  let own: ReturnType<Pino['destination']> | undefined;
  const routingOn = debugEnabled(debug, 'lb:routing');
  const scrub = (s: unknown) => (typeof s === 'string' ? redact(s, secrets()) : s);
  const logger = lazyLogger(level, () => {
    const pino = loadPino();
    if (!destination) own = pino.destination({ dest: 1, sync: false, maxLength: 16 * 1024 * 1024 });
    // A person at a terminal reads lines, not JSON; a pipe or a file (a log collector) keeps getting JSON.
    const out = !destination && process.stdout.isTTY ? prettyDestination(own!) : (destination ?? own);
    return pino(
      {
        level,
        base: { name: 'lb-server' },
        redact: { paths: REDACT_PATHS, censor: (v) => (typeof v === 'string' ? maskKey(v) : '[redacted]') },
        serializers: {
          // Errors are rare: scrub every configured key out of their text.
          err: (e: unknown) => {
            const o = pino.stdSerializers.err(e as Error) as unknown as Record<string, unknown>;
            if (o && typeof o === 'object') {
              o.message = scrub(o.message);
              o.stack = scrub(o.stack);
            }
            return o;
          },
        },
      },
      out as DestinationStream,
    );
  });
  const routing = routingOn ? logger.child({ ns: 'lb:routing' }, { level: minLevel(level) }) : undefined;
  return {
    logger,
    routing,
    flush: () =>
      new Promise<void>((resolve) => {
        if (own) {
          own.flush((err) => {
            void err;
            resolve();
          });
          return;
        }
        resolve();
      }),
  };
}

/** `debug`, unless the base level is already more verbose (trace). */
function minLevel(level: string): string {
  return level === 'trace' ? 'trace' : 'debug';
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** One pino JSON record as a terminal line: `12:00:01.234 WARN  message  key=value …`. Not JSON: passed through. */
export function prettyLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line);
  } catch {
    return line;
  }
  if (!o || typeof o !== 'object') return line;
  const { level, time, msg, name: _name, pid: _pid, hostname: _host, ...rest } = o;
  const at = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const lv = (LEVEL_NAMES[level as number] ?? String(level)).padEnd(5);
  let extra = '';
  for (const [k, v] of Object.entries(rest))
    extra += ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
  return `${at} ${lv} ${msg ?? ''}${extra ? ` ${extra}` : ''}\n`;
}

/** Wraps a destination so each record reaches it as {@link prettyLine}. */
function prettyDestination(to: { write(s: string): unknown }): { write(s: string): void } {
  return {
    write(s: string) {
      to.write(prettyLine(s));
    },
  };
}
