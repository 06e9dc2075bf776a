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
  if (value !== undefined) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new ConfigError(`${name}: expected a number of ms >= 0, received ${JSON.stringify(value)}`);
    }
    return value;
  }
  const raw = readEnv(envName);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    throw new ConfigError(`${envName}: expected a number of ms >= 0, received ${JSON.stringify(raw)}`);
  }
  return n;
}
