// A reload, all or nothing: the new config is validated and built before anything is swapped; settings that need
// a restart are kept and named (`../reload.ts` sorts them).
import { ConfigError, type RouterConfig } from '@lb/core';
import { Hedger, hasFallbacks } from '@lb/exchange';
import { registerCheapest } from '@lb/spend';
import { accessPolicy } from '../access.js';
import { resolveSettings, type ServerConfigInput } from '../options.js';
import { diffSettings, type ReloadReport, same } from '../reload.js';
import { keyLimiters } from '../spend-routes.js';
import { routerConfigOf, type ServerState } from './state.js';

/** Reloads `config` (or the one `reloadConfig` reads); returns what changed. */
export async function applyReload(
  st: ServerState,
  config: RouterConfig | ServerConfigInput | undefined,
): Promise<ReloadReport> {
  const { options, router, wallet, px, logger, integ, shared } = st;
  const settings = st.settings;
  const next = config ?? (options.reloadConfig ? await options.reloadConfig() : undefined);
  if (!next) throw new ConfigError('reload: no config given and no reloadConfig option');
  // Everything is validated and built before anything is swapped: a bad config changes nothing.
  const input =
    'router' in next && next.router && typeof next.router === 'object'
      ? (next as ServerConfigInput)
      : undefined;
  let applied: string[] = [];
  let restartRequired: string[] = [];
  let nextSettings = settings;
  let nextLimiter = st.limiter;
  // A section the new config leaves out keeps its running values (a `{ router }` alone never opens the gateway).
  if (input?.server !== undefined) {
    const diff = diffSettings(settings, resolveSettings(input.server));
    nextSettings = diff.settings;
    applied = diff.applied;
    restartRequired = diff.restartRequired;
    if (!same(settings.clientRateLimit, nextSettings.clientRateLimit))
      nextLimiter = st.makeLimiter(nextSettings);
  }
  const nextBreaker = input?.breaker ?? st.breakerSettings;
  const nextHealthCheck = input?.healthCheck ?? st.healthCheckSettings;
  const reattach = !same(st.breakerSettings, nextBreaker) || !same(st.healthCheckSettings, nextHealthCheck);
  // Keys and prices are built (and checked) before anything is swapped.
  const nextRouter = routerConfigOf(next);
  // A whole config (with its server section, as the CLI loads it) brings its keys even when it has none left.
  const nextSpend = input?.server !== undefined || input?.spend !== undefined ? input?.spend : options.spend;
  const nextWallet = input !== undefined ? wallet.prepare(nextSpend, nextSettings.apiKeys) : undefined;
  if (nextWallet !== undefined) registerCheapest({ prices: nextWallet.prices });
  const changes = router.reload(nextRouter);
  if (input !== undefined) {
    options.spend = nextSpend;
    wallet.swap(nextWallet!);
    // Keys other replicas created, rotated or revoked through the admin API since (Redis).
    if (wallet.vault.kind === 'redis')
      await wallet
        .loadVault()
        .catch((err) =>
          logger.warn({ err: (err as Error).message }, "could not reload the admin API's keys"),
        );
    st.limiters = keyLimiters((o) => integ.clientLimiter(o, shared?.store));
    st.settings = nextSettings;
    px.settings = nextSettings;
    if (input.server !== undefined || 'defaultModel' in input) px.defaultModel = input.defaultModel;
    px.fallbacks = hasFallbacks(input.fallbacks) ? input.fallbacks : undefined;
    // Hedging and stream continuation follow a whole reloaded config, as `defaultModel` does (a new hedger's
    // latency sketches and budgets start afresh).
    if (input.server !== undefined || 'hedge' in input)
      px.hedger = Hedger.enabled(input.hedge) ? new Hedger(router, input.hedge!) : undefined;
    if (input.server !== undefined || 'streamContinue' in input)
      px.streamContinue = input.streamContinue === true;
    st.policy = accessPolicy(wallet, nextSettings.adminKey);
    st.limiter = nextLimiter;
    st.bodies.max = nextSettings.maxInflightBodyBytes;
    st.syncRedactor();
  }
  if (reattach) {
    if (!same(st.breakerSettings, nextBreaker)) applied.push('breaker');
    if (!same(st.healthCheckSettings, nextHealthCheck)) applied.push('healthCheck');
    st.breakerSettings = nextBreaker;
    st.healthCheckSettings = nextHealthCheck;
    // Circuits start closed under new breaker settings (their counts were kept under the old ones).
    st.attached.dispose();
    st.attached = st.attach();
  }
  const report: ReloadReport = { ...changes, applied, restartRequired };
  logger.info(report, 'config reloaded');
  if (restartRequired.length)
    logger.warn(
      { restartRequired },
      `config reloaded, but ${restartRequired.join(', ')} changed and need(s) a restart: the running value(s) are kept`,
    );
  return report;
}
