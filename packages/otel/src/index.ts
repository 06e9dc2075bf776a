/**
 * OpenTelemetry traces for an `@lb/core` router: lb-server and `@lb/openai-adapter` both use it. `@opentelemetry/api`
 * is an optional peer dependency: without it {@link createTracing} returns undefined and nothing is traced.
 */

export { loadOtelApi } from './load.js';
export type { HeaderCarrier, LbTracing, TracingOptions } from './tracing.js';
export { createTracing } from './tracing.js';
