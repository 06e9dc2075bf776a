import type { Router } from '@lb/core';
import type { Observability, ObservabilityOptions } from './observability/types.js';

/** Builds the observability module for a router. */
export type ObservabilityFactory = (router: Router, options: ObservabilityOptions) => Observability;
