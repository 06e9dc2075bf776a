/**
 * Applying a config, first or on reload: validate everything, build the new pool (endpoints that keep their id
 * keep their statistics and health), then commit it and the settings in one step; nothing changes when invalid.
 */

import { HEALTHY } from '../state.js';
import { resolveStrategy } from '../strategies/builtin.js';
import { ROUTER_DEFAULTS, type RouterConfig, validateRouterNumbers, validateRouterShape } from './config.js';
import { setHealth } from './health.js';
import { draftPool } from './route-table.js';
import type { RouterState } from './router-state.js';

/** Validates `config` and swaps it in; emits `config:reloaded` unless `initial`. Throws (changing nothing) when invalid. */
export function applyConfig(
  s: RouterState,
  config: RouterConfig,
  initial: boolean,
): { added: string[]; removed: string[]; changed: string[] } {
  validateRouterShape(config);
  const factory = resolveStrategy(config.strategy);
  const random = config.random ?? s.ownRandom;
  const strategyName = factory({ random, ...config.strategyOptions }).name;
  validateRouterNumbers(config);
  const { pool, fresh, added, removed, changed } = draftPool(config, initial ? undefined : s.pool);
  // Validation passed: commit. From here on nothing throws.
  const runtimes = pool.runtimes;
  for (let i = 0; i < runtimes.length; i++) {
    const rt = runtimes[i];
    const ep = fresh[i];
    const wasDisabledByConfig = rt.health.status === 'disabled' && rt.health.reason === 'disabled in config';
    rt.endpoint = ep;
    rt.index = i;
    if (!ep.enabled && rt.health.status !== 'disabled')
      setHealth(s, rt, { status: 'disabled', reason: 'disabled in config' });
    else if (ep.enabled && wasDisabledByConfig) setHealth(s, rt, HEALTHY, 'enabled in config');
  }
  s.config = config;
  s.factory = factory;
  s.strategyName = strategyName;
  s.random = random;
  s.now = config.now ?? Date.now;
  s.maxRetries = config.maxRetries ?? ROUTER_DEFAULTS.maxRetries;
  s.failover = config.failover ?? true;
  s.deadlineMs = config.deadlineMs ?? ROUTER_DEFAULTS.deadlineMs;
  s.alpha = config.ewmaAlpha ?? ROUTER_DEFAULTS.ewmaAlpha;
  s.pool = pool;
  const result = { added, removed, changed };
  if (!initial) s.bus.emit('config:reloaded', result);
  return result;
}
