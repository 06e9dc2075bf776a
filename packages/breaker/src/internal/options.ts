import { ConfigError } from '@lb/core';
import { envText, parseEnvDuration, parseEnvNumber, processEnv } from '@lb/core/internal';

/** Environment variables as a plain record (`process.env` where it exists; nothing in browsers). */
export type Env = Readonly<Record<string, string | undefined>>;

export function defaultEnv(): Env {
  return processEnv();
}

function show(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** A finite number >= min (and <= max), or undefined when absent; throws naming the received value. */
export function num(
  where: string,
  v: unknown,
  min: number,
  max = Number.POSITIVE_INFINITY,
  integer = false,
): number | undefined {
  if (v === undefined) return undefined;
  if (
    typeof v !== 'number' ||
    !Number.isFinite(v) ||
    v < min ||
    v > max ||
    (integer && !Number.isInteger(v))
  ) {
    const range = max === Number.POSITIVE_INFINITY ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new ConfigError(
      `${where}: expected ${integer ? 'an integer' : 'a number'} ${range}, received ${show(v)}`,
    );
  }
  return v;
}

export function fn(where: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'function')
    throw new ConfigError(`${where}: expected a function, received ${show(v)}`);
}

export function bool(where: string, v: unknown): boolean | undefined {
  if (v !== undefined && typeof v !== 'boolean')
    throw new ConfigError(`${where}: expected true or false, received ${show(v)}`);
  return v as boolean | undefined;
}

export function oneOf<T extends string>(where: string, v: unknown, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    throw new ConfigError(
      `${where}: expected one of ${allowed.map((a) => `'${a}'`).join(', ')}, received ${show(v)}`,
    );
  }
  return v as T;
}

/**
 * Reads a number from the environment by the rules every lb package reads variables by (`@lb/core/internal`, the
 * same as `@lb/config-env`'s): trimmed, blank is unset; with `unit`, a duration (a bare number in that unit, or text
 * like `30s`) in ms. Throws a `ConfigError` naming the variable and the value.
 */
export function envNumber(
  env: Env,
  name: string,
  min: number,
  opts: { integer?: boolean; unit?: 'ms' | 's' } = {},
): number | undefined {
  const raw = env[name];
  const text = envText(env, name);
  if (text === undefined) return undefined;
  const value = opts.unit ? parseEnvDuration(text, opts.unit) : parseEnvNumber(text);
  if (value === undefined || (opts.integer && !Number.isInteger(value))) {
    throw new ConfigError(
      `${name}: expected ${opts.integer ? 'an integer' : 'a number'}${opts.unit ? ' or a duration such as 30s' : ''}, received ${show(raw)}`,
    );
  }
  if (value < min) throw new ConfigError(`${name}: expected a value >= ${min}, received ${show(raw)}`);
  return value;
}
