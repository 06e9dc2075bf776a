import { maskKey, redact } from '@lb/core';
import pino, { type DestinationStream, type Logger } from 'pino';

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
  const own = destination
    ? undefined
    : pino.destination({ dest: 1, sync: false, maxLength: 16 * 1024 * 1024 });
  const dest = (destination ?? own) as DestinationStream;
  const routingOn = debugEnabled(debug, 'lb:routing');
  const scrub = (s: unknown) => (typeof s === 'string' ? redact(s, secrets()) : s);
  const logger = pino(
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
    dest,
  );
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
