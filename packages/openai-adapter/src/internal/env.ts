import { ConfigError } from '@lb/core';
import { envText, parseEnvBool, parseEnvDuration, parseEnvNumber, processEnv } from '@lb/core/internal';

// The adapter cannot depend on @lb/config-env (zod, TOML, YAML), so it reads its few variables itself, by the same
// rules (`@lb/core/internal`): trimmed, empty = unset, durations in ms or with units (`30s`), booleans
// true/1/yes/on and false/0/no/off. The names and units are config-env's.

/** Reads an environment variable without importing `node:process` (undefined in browsers and edge runtimes). */
export function readEnv(name: string): string | undefined {
  return envText(processEnv(), name);
}

/**
 * An option in ms: explicit value, else the env var (ms, or text like `30s`), else the default. Validates both and
 * names the received value.
 */
export function msOption(value: unknown, name: string, envName: string, fallback: number): number {
  return numberOption(
    value,
    name,
    envName,
    fallback,
    'a number of ms >= 0',
    (n) => n >= 0,
    (t) => parseEnvDuration(t, 'ms'),
  );
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
    parseEnvNumber,
  );
}

/** A number from the env var, or undefined when unset; a `ConfigError` naming the variable and value otherwise. */
export function envNumber(envName: string, expected: string, ok: (n: number) => boolean): number | undefined {
  const raw = readEnv(envName);
  if (raw === undefined) return undefined;
  const n = parseEnvNumber(raw);
  if (n === undefined || !ok(n))
    throw new ConfigError(`${envName}: expected ${expected}, received ${JSON.stringify(raw)}`);
  return n;
}

/** A boolean from the env var, or undefined when unset; a `ConfigError` naming the variable and value otherwise. */
export function envBool(envName: string): boolean | undefined {
  const raw = readEnv(envName);
  if (raw === undefined) return undefined;
  const b = parseEnvBool(raw);
  if (b === undefined)
    throw new ConfigError(`${envName}: expected true or false, received ${JSON.stringify(raw)}`);
  return b;
}

function numberOption(
  value: unknown,
  name: string,
  envName: string,
  fallback: number,
  expected: string,
  ok: (n: number) => boolean,
  parse: (text: string) => number | undefined,
): number {
  if (value !== undefined) {
    if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
      throw new ConfigError(`${name}: expected ${expected}, received ${JSON.stringify(value)}`);
    }
    return value;
  }
  const raw = readEnv(envName);
  if (raw === undefined) return fallback;
  const n = parse(raw);
  if (n === undefined || !ok(n)) {
    throw new ConfigError(`${envName}: expected ${expected}, received ${JSON.stringify(raw)}`);
  }
  return n;
}
