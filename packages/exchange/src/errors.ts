/** A response's headers as the engine keeps them: lower-case keys (node's `IncomingHttpHeaders` is one). */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/**
 * The stream opened with an error event (or sent one while held on probation): a failed attempt, classified by
 * `status` (from `@lb/providers`' one table), that may fail over. Nothing of it reached the client.
 */
export class StreamOpenError extends Error {
  readonly status: number;
  readonly headers: ResponseHeaders;
  readonly type: string;
  constructor(status: number, message: string, type: string, headers: ResponseHeaders) {
    super(`stream opened with an error event: ${message}`);
    this.name = 'StreamOpenError';
    this.status = status;
    this.type = type;
    this.headers = headers;
  }
}

/**
 * An upstream stayed silent too long: before a stream's first content or a response's headers (`first-byte`; the
 * router fails over) or between two chunks of a stream that had begun (`idle`). Named `TimeoutError` so that core's
 * `classify()` reads it as a timeout (fail over, counts for breakers).
 */
export class ExchangeTimeoutError extends Error {
  readonly code = 'ERR_LB_TIMEOUT';
  readonly phase: 'first-byte' | 'idle';
  readonly timeoutMs: number;
  constructor(phase: 'first-byte' | 'idle', timeoutMs: number) {
    super(
      phase === 'idle' ? `no stream data for ${timeoutMs} ms` : `no stream content within ${timeoutMs} ms`,
    );
    this.name = 'TimeoutError';
    this.phase = phase;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A stream ran past `maxStreamDurationMs` (a bound on how long one stream may hold a connection, whatever its pace).
 * The upstream request is aborted; the client's stream ends with an SSE error.
 */
export class StreamDurationError extends Error {
  readonly code = 'ERR_LB_STREAM_TOO_LONG';
  readonly limitMs: number;
  constructor(limitMs: number) {
    super(`the upstream stream ran past ${limitMs} ms`);
    this.name = 'StreamDurationError';
    this.limitMs = limitMs;
  }
}

/**
 * One server-sent event grew past `maxEventBytes` without its end (an upstream sending an endless line). The
 * upstream request is aborted; a stream already under way ends with an SSE error.
 */
export class EventTooLargeError extends Error {
  readonly code = 'ERR_LB_SSE_EVENT_TOO_LARGE';
  readonly limit: number;
  constructor(limit: number) {
    super(`an upstream stream event exceeded ${limit} bytes without ending`);
    this.name = 'EventTooLargeError';
    this.limit = limit;
  }
}
