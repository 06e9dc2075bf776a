/**
 * @lb/config-env — turns the environment (three schemes users already have), `.env` files and TOML/JSON/YAML
 * config files into a validated `LbConfig` for `@lb/core` routers and `@lb/server`; reports every problem at once
 * with its path; hot-reloads a config file into a running router; presets for common setups.
 */

export { SERVER_DEFAULTS } from './defaults.js';
export type { EnvDocument, Origin } from './env.js';
export {
  ENV_VARS,
  envToDocument,
  GLOBALS as ENV_GLOBALS,
  isConfigured,
  NUMBERED_FIELDS as ENV_NUMBERED_FIELDS,
  OPENAI_DEFAULT_BASE_URL,
} from './env.js';
export { ConfigValidationError, isConfigValidationError } from './errors.js';
export type { FallbacksConfig } from './fallbacks.js';
export { FALLBACK_ENV } from './fallbacks.js';
export type { ConfigIssue } from './issues.js';
export type { ConfigFormat } from './load.js';
export {
  configFromEnv,
  configFromFile,
  formatOf,
  loadConfig,
  /** Alias of {@link loadConfig}. */
  loadConfig as loadOpenAIConfig,
  parseConfig,
  readDotenv,
  serverSettingsFromEnv,
  toDocument,
  validateConfig,
  /** Alias of {@link validateConfig}. */
  validateConfig as validateOpenAIConfig,
} from './load.js';
export type { PresetEndpoint, PresetOptions } from './presets.js';
// Names from the libraries people migrate from (one line each).
export {
  createConfigFromEnv,
  /** Alias of {@link createConfigFromEnv}. */
  createConfigFromEnv as createOpenAIConfigFromEnv,
  createMultiConfig,
  /** Alias of {@link createMultiConfig}. */
  createMultiConfig as createOpenAIMultiConfig,
  createWithProxy,
  /** Alias of {@link createWithProxy}. */
  createWithProxy as createOpenAIWithProxy,
  presets,
} from './presets.js';
export type { ConfigDocument, ConfigDocumentInput } from './schema.js';
export { configJsonSchema, normalizeStrategy } from './schema.js';
export type { PriceConfig, SpendConfig, VirtualKeyConfig } from './spend.js';
export type {
  BreakerConfig,
  ConfigSource,
  Env,
  EnvScheme,
  HealthCheckConfig,
  HedgeOptionsConfig,
  HedgeSettings,
  LbConfig,
  LoadConfigOptions,
  ServerConfig,
} from './types.js';
export type { ValidationResult } from './validate.js';
export type { ReloadChanges, ReloadResult, WatchConfigOptions } from './watch.js';
export { reloadFromFile, watchConfig } from './watch.js';
