import { createRequire } from 'node:module';

let api: object | null | undefined;

/**
 * `@opentelemetry/api` when it is installed (an optional peer dependency), resolved once per process; undefined
 * otherwise, and when `OTEL_SDK_DISABLED=true`. Nothing is bundled: without it, tracing is not set up at all.
 */
export function loadOtelApi(): object | undefined {
  if (api === undefined) {
    try {
      api =
        process.env.OTEL_SDK_DISABLED?.toLowerCase() === 'true'
          ? null
          : (createRequire(import.meta.url)('@opentelemetry/api') as object);
    } catch {
      api = null;
    }
  }
  return api ?? undefined;
}
