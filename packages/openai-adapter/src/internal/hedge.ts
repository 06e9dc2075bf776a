import { ConfigError } from '@lb/core';
import { type HedgeConfig, Hedger } from '@lb/exchange';
import { envNumber } from './env.js';

/**
 * The hedging of a client: the `hedge` option, else `LB_HEDGE_AFTER_MS` / `LB_HEDGE_BUDGET` from the environment;
 * undefined when it turns hedging on nowhere (no `Hedger` is built and no call pays for it).
 */
export function hedgeOf(option: HedgeConfig | undefined): HedgeConfig | undefined {
  let config = option;
  if (config !== undefined && (typeof config !== 'object' || config === null)) {
    throw new ConfigError(`hedge: expected an object, received ${JSON.stringify(config)}`);
  }
  if (config === undefined) {
    const afterMs = envNumber('LB_HEDGE_AFTER_MS', 'a number of ms >= 0', (n) => n >= 0);
    const budget = envNumber('LB_HEDGE_BUDGET', 'a share between 0 and 1', (n) => n >= 0 && n <= 1);
    if (afterMs !== undefined || budget !== undefined)
      config = { ...(afterMs !== undefined ? { afterMs } : {}), ...(budget !== undefined ? { budget } : {}) };
  }
  return Hedger.enabled(config) ? config : undefined;
}
