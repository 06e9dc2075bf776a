import { ConfigError } from '@lb/core';

/** Reads an environment variable without importing `node:process` (undefined in browsers and edge runtimes). */
export function readEnv(name: string): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = env?.[name];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * An option in ms: explicit value, else the env var, else the default. Validates both and names the received value.
 */
export function msOption(value: unknown, name: string, envName: string, fallback: number): number {
  return numberOption(value, name, envName, fallback, 'a number of ms >= 0', (n) => n >= 0);
}

/** A byte count from an option, else the env var, else `fallback`: a positive integer, or a `ConfigError`. */
export function bytesOption(value: unknown, name: string, envName: string, fallback: number): number {
  return numberOption(
    value,
    name,
    envName,
    fallback,
    'a number of bytes > 0',
    (n) => Number.isInteger(n) && n > 0,
  );
}

function numberOption(
  value: unknown,
  name: string,
  envName: string,
  fallback: number,
  expected: string,
  ok: (n: number) => boolean,
): number {
  if (value !== undefined) {
    if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
      throw new ConfigError(`${name}: expected ${expected}, received ${JSON.stringify(value)}`);
    }
    return value;
  }
  const raw = readEnv(envName);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || !ok(n)) {
    throw new ConfigError(`${envName}: expected ${expected}, received ${JSON.stringify(raw)}`);
  }
  return n;
}
