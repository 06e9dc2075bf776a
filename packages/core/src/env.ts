import { parseDuration } from './classify.js';

/**
 * The one set of rules every lb package reads its environment variables by (`@lb/config-env`'s table, and the
 * packages that cannot depend on it: `@lb/openai-adapter`, `@lb/breaker`), so that one variable means the same
 * wherever it is read.
 */

/** Environment variables as a plain record. */
export type EnvRecord = Readonly<Record<string, string | undefined>>;

/** `process.env` where there is one; an empty record in browsers and edge runtimes (no `node:process` import). */
export function processEnv(): EnvRecord {
  return (globalThis as { process?: { env?: EnvRecord } }).process?.env ?? {};
}

/** A variable's value, trimmed; unset, empty and blank all read as undefined. */
export function envText(env: EnvRecord, name: string): string | undefined {
  const v = env[name];
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

const BOOLS: Readonly<Record<string, boolean>> = {
  true: true,
  false: false,
  '1': true,
  '0': false,
  yes: true,
  no: false,
  on: true,
  off: false,
};

/** `true`/`1`/`yes`/`on` and `false`/`0`/`no`/`off` (any case); undefined for anything else. */
export function parseEnvBool(text: string): boolean | undefined {
  return BOOLS[text.trim().toLowerCase()];
}

const NUMERIC = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

/** A decimal number (`12`, `0.5`, `1e3`); undefined for anything else (`0x10`, `12abc`, `''`, `Infinity`). */
export function parseEnvNumber(text: string): number | undefined {
  const t = text.trim();
  return NUMERIC.test(t) ? Number(t) : undefined;
}

/**
 * A duration in ms: a bare number is in `unit` (`'ms'`, or `'s'` for the variables documented in seconds), text with
 * units (`30s`, `1m30s`, `500ms`, `1h`) is converted; undefined for anything else.
 */
export function parseEnvDuration(text: string, unit: 'ms' | 's'): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * (unit === 's' ? 1000 : 1);
  if (/^\d/.test(t) && /[hms]$/.test(t)) return parseDuration(t);
  return undefined;
}
