import { isLbError, LbError } from '@lb/core';

/**
 * A stream broke after its first byte reached the caller (connection reset, upstream error, translation failure).
 * Failover is no longer possible then: the caller's stream iteration rejects with this error, promptly.
 * Renders as OpenAI's error JSON; the message never carries a key. Check with {@link isStreamInterruptedError}.
 *
 * @example
 * try { for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? '') }
 * catch (e) { if (isStreamInterruptedError(e)) console.warn(`stream from ${e.endpointId} broke`) }
 */
export class StreamInterruptedError extends LbError {
  readonly isStreamInterruptedError = true;
  /** The endpoint whose stream broke. */
  readonly endpointId: string;
  /** Bytes already delivered to the caller. */
  readonly bytes: number;

  constructor(endpointId: string, bytes: number, message: string, cause?: unknown) {
    super(`Stream from endpoint ${JSON.stringify(endpointId)} broke after ${bytes} bytes: ${message}`, {
      status: 502,
      type: 'server_error',
      code: 'stream_interrupted',
      cause,
    });
    this.name = 'StreamInterruptedError';
    this.endpointId = endpointId;
    this.bytes = bytes;
  }
}

/** True for a {@link StreamInterruptedError} (across package copies). */
export function isStreamInterruptedError(e: unknown): e is StreamInterruptedError {
  return isLbError(e) && (e as { isStreamInterruptedError?: unknown }).isStreamInterruptedError === true;
}

/**
 * An upstream stream stayed silent too long: before its first byte (`phase: 'first-byte'`; the router then fails
 * over, this counts as a timeout) or between two chunks (`phase: 'idle'`; the caller's iteration rejects).
 * Check with {@link isStreamTimeoutError}.
 *
 * @example
 * createOpenAI(router, { streamIdleTimeoutMs: 30_000 });
 */
export class StreamTimeoutError extends LbError {
  readonly isStreamTimeoutError = true;
  readonly endpointId: string;
  readonly phase: 'first-byte' | 'idle';
  /** The timeout that passed, ms. */
  readonly timeoutMs: number;

  constructor(endpointId: string, phase: 'first-byte' | 'idle', timeoutMs: number) {
    super(
      phase === 'idle'
        ? `Stream from endpoint ${JSON.stringify(endpointId)} sent nothing for ${timeoutMs} ms`
        : `Stream from endpoint ${JSON.stringify(endpointId)} sent no first byte within ${timeoutMs} ms`,
      { status: 504, type: 'server_error', code: 'stream_timeout' },
    );
    // Named so that core's classify() reads it as a timeout (fail over, counts for breakers).
    this.name = 'StreamTimeoutError';
    this.endpointId = endpointId;
    this.phase = phase;
    this.timeoutMs = timeoutMs;
  }
}

/** True for a {@link StreamTimeoutError} (across package copies). */
export function isStreamTimeoutError(e: unknown): e is StreamTimeoutError {
  return isLbError(e) && (e as { isStreamTimeoutError?: unknown }).isStreamTimeoutError === true;
}
