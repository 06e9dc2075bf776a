import { ConfigError, parseDuration } from '@lb/core';

/** Environment variables as a plain record (`process.env` where it exists; nothing in browsers). */
export type Env = Readonly<Record<string, string | undefined>>;

export function defaultEnv(): Env {
  const p = (globalThis as { process?: { env?: Env } }).process;
  return p?.env ?? {};
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

/** Reads a number from the environment (`scale` converts its unit to ms), throwing naming the variable and value. */
export function envNumber(
  env: Env,
  name: string,
  min: number,
  opts: { integer?: boolean; scale?: number; durations?: boolean } = {},
): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const text = raw.trim();
  let value = Number(text);
  if (!Number.isFinite(value) && opts.durations) {
    const ms = parseDuration(text);
    if (ms !== undefined) return check(ms);
  }
  if (!Number.isFinite(value) || (opts.integer && !Number.isInteger(value))) {
    throw new ConfigError(
      `${name}: expected ${opts.integer ? 'an integer' : 'a number'}${opts.durations ? ' or a duration such as 30s' : ''}, received ${show(raw)}`,
    );
  }
  value *= opts.scale ?? 1;
  return check(value);

  function check(v: number): number {
    if (v < min) throw new ConfigError(`${name}: expected a value >= ${min}, received ${show(raw)}`);
    return v;
  }
}
