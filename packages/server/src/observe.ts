import type { Router } from '@lb/core';
import type { Observability, ObservabilityOptions } from './observability/types.js';

/** Options handed to the observability module: its own options (the server fills them from its settings). */
export type ObservabilityInput = ObservabilityOptions;

/** Builds the observability module for a router. */
export type ObservabilityFactory = (router: Router, options: ObservabilityOptions) => Observability;
