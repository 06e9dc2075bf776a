/**
 * @lb/core/internal — building blocks lb's own packages share, exported for them and for plugin authors who accept
 * churn. UNSTABLE: not covered by semver; any minor release may change or remove them.
 */

export { EndpointSlot } from './endpoint.js';
export {
  type EnvRecord,
  envText,
  parseEnvBool,
  parseEnvDuration,
  parseEnvNumber,
  processEnv,
} from './env.js';
export { type FastRandom, fastRandom } from './random.js';
export { STREAM_DEFAULTS } from './stream-defaults.js';
