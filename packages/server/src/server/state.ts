// The running server's state its parts share: what stays for its life, and what a reload swaps whole (settings,
// access policy, client limiters, guards), so that a request sees one config or the next, never a mix.
import type { Router, RouterConfig } from '@lb/core';
import type { ClientLimiter } from '@lb/ratelimit';
import type { Logger } from 'pino';
import type { AccessPolicy } from '../access.js';
import type { Dashboard } from '../dashboard/index.js';
import type { BodyBudget } from '../front.js';
import type { Observability } from '../observability/types.js';
import type { BreakerSettings, HealthCheckSettings, ServerConfigInput, ServerSettings } from '../options.js';
import type { ProxyContext } from '../proxy/context.js';
import type { Wallet } from '../spend.js';
import type { KeyLimiters } from '../spend-routes.js';
import type { CreateServerOptions, Integrations } from './types.js';

/** The shared store (Redis) the integrations built, when `redisUrl` is set. */
export type SharedStore = ReturnType<NonNullable<Integrations['sharedStore']>>;

/** The guards attached to the router (breaker, rate limiter, health checks). */
export type Attached = ReturnType<Integrations['attach']>;

export interface ServerState {
  readonly options: CreateServerOptions;
  readonly integ: Integrations;
  readonly router: Router;
  /** What every request through the proxy shares (`proxy/context.ts`). */
  readonly px: ProxyContext;
  readonly obs: Observability;
  readonly logger: Logger;
  readonly wallet: Wallet;
  readonly shared: SharedStore | undefined;
  /** The in-flight body budget (`maxInflightBodyBytes`). */
  readonly bodies: BodyBudget;
  readonly dashboard: Dashboard;

  // ---- swapped by a reload
  settings: ServerSettings;
  policy: AccessPolicy;
  /** The client limit (`clientRateLimit`), when on. */
  limiter: ClientLimiter | undefined;
  /** Named keys' own request limits. */
  limiters: KeyLimiters;
  breakerSettings: BreakerSettings | undefined;
  healthCheckSettings: HealthCheckSettings | undefined;
  /** Replaced whole when a reload changes breaker or health-check settings: observers read it through `current`. */
  attached: Attached;

  // ---- requests in flight, for a graceful close
  inFlight: number;
  closing: boolean;
  /** Called when the last request in flight ends while closing. */
  drained: (() => void) | undefined;

  /** Attaches the guards under the current breaker and health-check settings. */
  attach(): Attached;
  /** The client limiter for `s` (undefined when the client limit is off). */
  makeLimiter(s: ServerSettings): ClientLimiter | undefined;
  /** Rebuilds the redactor from the current endpoints and keys. */
  syncRedactor(): void;
}

export function routerConfigOf(c: RouterConfig | ServerConfigInput): RouterConfig {
  return 'router' in c && c.router && typeof c.router === 'object'
    ? (c as ServerConfigInput).router
    : (c as RouterConfig);
}
