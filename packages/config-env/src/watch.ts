import { type FSWatcher, readFileSync, stat, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Router } from '@lb/core';
import { ConfigError } from '@lb/core';
import { configFromFile } from './load.js';
import type { Env, LbConfig } from './types.js';

/** What a reload changed (from `router.reload`). */
export interface ReloadChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

/** The outcome of one reload attempt: applied, or rejected with the running config kept. */
export type ReloadResult =
  | { ok: true; config: LbConfig; changes: ReloadChanges }
  | { ok: false; error: Error };

/** Options of {@link watchConfig}. */
export interface WatchConfigOptions {
  /** Called after the router swapped to a valid new config (apply `server`/`breaker` settings here). */
  onReload?: (config: LbConfig, changes: ReloadChanges) => void;
  /** Called when a changed file is invalid or unreadable; the running config stays. Default: `console.error`. */
  onError?: (error: Error) => void;
  /** Quiet time after the last change event before reloading, ms. Default 250. */
  debounceMs?: number;
  /** Interval of the mtime/size poll that backs up `fs.watch` (network and container mounts miss events), ms; 0 disables. Default 2000. */
  pollMs?: number;
  /** Variables for `${VAR}` and env settings. Default `process.env`. */
  env?: Env;
}

/**
 * Validates the file and, when valid, swaps the router to it atomically (`router.reload`): endpoints that keep their
 * name keep their statistics and breaker state, in-flight requests finish on what they started with, and
 * `config:reloaded` goes on the bus. When invalid, nothing changes. Never throws. Wire it to SIGHUP.
 *
 * @example
 * process.on('SIGHUP', () => {
 *   const r = reloadFromFile('lb.toml', router);
 *   if (!r.ok) console.error(r.error.message);
 * });
 */
export function reloadFromFile(path: string, router: Router, options: { env?: Env } = {}): ReloadResult {
  try {
    const config = configFromFile(path, options.env ?? process.env);
    const changes = router.reload(config.router);
    return { ok: true, config, changes };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error : new Error(String(error)) };
  }
}

/**
 * Watches a config file and reloads the router when it changes (debounced `fs.watch` on its directory, so editors
 * that replace the file are seen, plus a cheap mtime poll). Unchanged content is not reloaded. Returns a disposer.
 *
 * @example
 * const stop = watchConfig('lb.toml', router, {
 *   onReload: (_config, { added, removed, changed }) => log.info({ added, removed, changed }, 'config reloaded'),
 *   onError: (e) => log.error(e.message),
 * });
 * // later: stop();
 */
export function watchConfig(path: string, router: Router, options: WatchConfigOptions = {}): () => void {
  const file = resolve(path);
  const debounceMs = options.debounceMs ?? 250;
  const pollMs = options.pollMs ?? 2000;
  for (const [k, v] of [
    ['debounceMs', debounceMs],
    ['pollMs', pollMs],
  ] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new ConfigError(`watchConfig: ${k} must be a number >= 0 (ms), received ${JSON.stringify(v)}`);
  }
  const onError =
    options.onError ?? ((e: Error) => console.error(`[lb] config reload rejected: ${e.message}`));
  let lastText = readText(file);
  let lastStamp = '';
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const apply = () => {
    timer = undefined;
    if (closed) return;
    const text = readText(file);
    if (text === undefined || text === lastText) return;
    const r = reloadFromFile(file, router, { env: options.env });
    lastText = text;
    if (r.ok) options.onReload?.(r.config, r.changes);
    else onError(r.error);
  };
  const schedule = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(apply, debounceMs);
    timer.unref?.();
  };

  let watcher: FSWatcher | undefined;
  try {
    const name = basename(file);
    watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      if (!changed || changed.toString() === name) schedule();
    });
    watcher.on('error', () => {});
  } catch {
    // No fs.watch here (some containers, network mounts): the poll still sees changes.
  }

  let poll: ReturnType<typeof setInterval> | undefined;
  if (pollMs > 0) {
    stat(file, (err, s) => {
      if (!err) lastStamp = `${s.mtimeMs}:${s.size}:${s.ino}`;
    });
    poll = setInterval(() => {
      stat(file, (err, s) => {
        if (err || closed) return;
        const stamp = `${s.mtimeMs}:${s.size}:${s.ino}`;
        if (stamp !== lastStamp) {
          lastStamp = stamp;
          schedule();
        }
      });
    }, pollMs);
    poll.unref?.();
  }

  return () => {
    closed = true;
    if (timer) clearTimeout(timer);
    if (poll) clearInterval(poll);
    watcher?.close();
  };
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
