/**
 * @lb/server — `lb-server`, the OpenAI-compatible load-balancing proxy, as a library.
 */
import { integrations } from './integrations.js';
import { buildServer, type CreateServerOptions, type LbServer } from './server.js';

export type { CheckResult } from './check.js';
export { checkEndpoints, formatCheckTable } from './check.js';
export type { ClientRequestRecord, Observability, ObservabilityOptions } from './observability/index.js';
export type {
  BreakerSettings,
  HealthCheckSettings,
  ServerConfigInput,
  ServerSettings,
} from './options.js';
export { DEFAULT_SETTINGS } from './options.js';
export type { LbPlugin, LoadedPlugin, LoadedPlugins } from './plugins.js';
export { checkStrategies, loadPlugins } from './plugins.js';
export type { ReloadReport } from './reload.js';
export type { CreateServerOptions, LbServer } from './server.js';

/**
 * Creates an lb-server: an OpenAI-compatible proxy spreading requests over the router's endpoints, with failover,
 * streaming, breakers, rate limits, health, metrics and admin routes. Call `listen()` to start it.
 *
 * @example
 * import { createServer } from '@lb/server';
 * const server = createServer({
 *   router: { endpoints: [
 *     { id: 'main', url: 'https://api.openai.com/v1', apiKey: process.env.OPENAI_API_KEY },
 *     { id: 'backup', url: 'https://backup.example/v1', apiKey: process.env.BACKUP_KEY, priority: 2 },
 *   ] },
 *   server: { port: 8080 },
 * });
 * console.log(await server.listen()); // http://127.0.0.1:8080 — point an OpenAI client's baseURL at …/v1
 */
export function createServer(options: CreateServerOptions): LbServer {
  return buildServer(options, integrations);
}
