import type { ServerSettings } from './options.js';

/**
 * Server settings a running server cannot take over: its listeners, its upstream transport, its Redis connection and
 * its logging/metrics wiring. A reload that changes one keeps the running value and names it in `restartRequired`.
 * Everything else (gateway and admin keys, client limits, body limits, timeouts, response headers…) is applied.
 */
export const RESTART_SETTINGS: readonly (keyof ServerSettings)[] = Object.freeze([
  'host',
  'port',
  'opsPort',
  'opsHost',
  'connectTimeoutMs',
  'http2',
  'connectionsPerOrigin',
  'redisUrl',
  'requestLog',
  'metricsEnabled',
  'logLevel',
  'streamProbationMaxBytes',
]);

/** What a reload did: the router's changes, the settings applied and the ones that wait for a restart (names only). */
export interface ReloadReport {
  added: string[];
  removed: string[];
  changed: string[];
  /** Settings (and `breaker`/`healthCheck` sections) whose new values are in effect. */
  applied: string[];
  /** Settings whose new values need a restart: the running values are kept. */
  restartRequired: string[];
}

/**
 * Splits the settings a reload changes into those applied and those that need a restart, and returns the settings to
 * run with (the new ones, with the running values of the restart-only ones).
 */
export function diffSettings(
  prev: ServerSettings,
  next: ServerSettings,
): { settings: ServerSettings; applied: string[]; restartRequired: string[] } {
  const applied: string[] = [];
  const restartRequired: string[] = [];
  const settings = { ...next } as Record<string, unknown>;
  const keys = new Set([...Object.keys(prev), ...Object.keys(next)]) as Set<keyof ServerSettings>;
  for (const k of keys) {
    if (same(prev[k], next[k])) continue;
    if (RESTART_SETTINGS.includes(k)) {
      restartRequired.push(k);
      settings[k] = prev[k];
    } else applied.push(k);
  }
  return { settings: settings as unknown as ServerSettings, applied, restartRequired };
}

/** Structural equality of plain config values. */
export function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
