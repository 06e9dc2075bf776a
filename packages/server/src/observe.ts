import type { Router } from '@lb/core';
import type { StoreHealth } from '@lb/ratelimit';
import type { Logger } from 'pino';
import type { SharedStoreView } from './observability/types.js';
import type { ExchangeRecord } from './proxy.js';

/** What the server needs from its observability module (`src/observability`): logs, metrics, health, request log. */
export interface ObservabilityLike {
  readonly logger: Logger;
  readonly metricsContentType: string;
  metricsText(): Promise<string>;
  health(): { httpStatus: number; body: unknown };
  stats(): object;
  recordRequest(rec: ExchangeRecord): void;
  close(): Promise<void>;
}

/** Options handed to the observability module. */
export interface ObservabilityInput {
  metricsEnabled: boolean;
  logLevel: string;
  requestLog: { enabled: boolean; path?: string };
  debug?: string;
  logDestination?: NodeJS.WritableStream;
  breaker?: { snapshot(): any };
  rateLimit?: { snapshot(): any };
  healthChecks?: { snapshot(): any };
  /** Bytes held by streams on stream probation now (`lb_stream_probation_held_bytes`). */
  heldBytes?: () => number;
  /** The shared rate-limit store's state for `/health`, when one is configured. */
  sharedStore?: () => SharedStoreView;
  /** The shared store's health: its typed state changes are logged, its status feeds `lb_store_*` and `/health`. */
  store?: StoreHealth;
  version?: string;
}

/** Builds the observability module for a router. */
export type ObservabilityFactory = (router: Router, options: ObservabilityInput) => ObservabilityLike;
