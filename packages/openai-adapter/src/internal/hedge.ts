import { ConfigError } from '@lb/core';
import { type HedgeConfig, Hedger } from '@lb/exchange';
import { readEnv } from './env.js';

/**
 * The hedging of a client: the `hedge` option, else `LB_HEDGE_AFTER_MS` / `LB_HEDGE_BUDGET` from the environment;
 * undefined when it turns hedging on nowhere (no `Hedger` is built and no call pays for it).
 */
export function hedgeOf(option: HedgeConfig | undefined): HedgeConfig | undefined {
  let config = option;
  if (config !== undefined && (typeof config !== 'object' || config === null)) {
    throw new ConfigError(`hedge: expected an object, received ${JSON.stringify(config)}`);
  }
  const after = readEnv('LB_HEDGE_AFTER_MS');
  const budget = readEnv('LB_HEDGE_BUDGET');
  if (config === undefined && (after !== undefined || budget !== undefined)) {
    config = {};
    if (after !== undefined) {
      const n = Number(after);
      if (!Number.isFinite(n) || n < 0)
        throw new ConfigError(
          `LB_HEDGE_AFTER_MS: expected a number of ms >= 0, received ${JSON.stringify(after)}`,
        );
      config.afterMs = n;
    }
    if (budget !== undefined) {
      const n = Number(budget);
      if (!Number.isFinite(n) || n < 0 || n > 1)
        throw new ConfigError(
          `LB_HEDGE_BUDGET: expected a share between 0 and 1, received ${JSON.stringify(budget)}`,
        );
      config.budget = n;
    }
  }
  return Hedger.enabled(config) ? config : undefined;
}
