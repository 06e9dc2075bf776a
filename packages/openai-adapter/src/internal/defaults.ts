/**
 * The defaults of the stream settings the adapter shares with lb-server. They are lb-server's (`@lb/config-env`'s
 * `SERVER_DEFAULTS`, the one declaration), which this package cannot import (it does not depend on `@lb/config-env`):
 * `test/env.test.ts` holds every value here equal to it.
 */
export const STREAM_DEFAULTS = Object.freeze({
  streamFirstByteTimeoutMs: 30_000,
  streamIdleTimeoutMs: 60_000,
  streamProbationHoldMs: 10_000,
  streamProbationMaxBytes: 64 * 1024 * 1024,
  maxEventBytes: 8 * 1024 * 1024,
  maxStreamDurationMs: 30 * 60_000,
});
