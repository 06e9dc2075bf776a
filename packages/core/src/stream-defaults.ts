/**
 * The defaults of the stream settings lb-server and `@lb/openai-adapter` share, declared once: `@lb/config-env`'s
 * `SERVER_DEFAULTS` (lb-server's defaults) takes them from here, and so does the adapter, which does not depend on
 * `@lb/config-env`.
 */
export const STREAM_DEFAULTS = Object.freeze({
  /** Streams: longest wait for the first byte, ms. */
  streamFirstByteTimeoutMs: 30_000,
  /** Streams: longest silence between chunks, ms. */
  streamIdleTimeoutMs: 60_000,
  /** Streams from an endpoint on probation are held back up to this long, ms. */
  streamProbationHoldMs: 10_000,
  /** What all held streams may keep in memory together, bytes (64 MiB). */
  streamProbationMaxBytes: 64 * 1024 * 1024,
  /** Largest server-sent event, bytes (8 MiB). */
  maxEventBytes: 8 * 1024 * 1024,
  /** The longest one stream may run, ms (30 min). */
  maxStreamDurationMs: 30 * 60_000,
});
