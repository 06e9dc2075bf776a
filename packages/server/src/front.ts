import type { Duplex } from 'node:stream';
import { errorFromStatus } from '@lb/core';

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/**
 * Answers what node's HTTP parser refused before a request existed (the server's 'clientError'): 431 for oversized
 * headers, 408 when the headers or the request did not arrive in time (`headersTimeout`/`requestTimeout`), 400 for
 * anything malformed — each with an OpenAI-shaped JSON body, then the connection is closed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const code = err.code ?? '';
  const status =
    code === 'HPE_HEADER_OVERFLOW'
      ? 431
      : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT'
        ? 408
        : 400;
  const message =
    status === 431
      ? 'The request headers are too large'
      : status === 408
        ? 'The request did not arrive in time'
        : `Malformed HTTP request${code ? ` (${code})` : ''}`;
  const body = JSON.stringify(errorFromStatus(status, message).toOpenAIError());
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * What the request bodies being read and held at one time may take together (`maxInflightBodyBytes`). A body
 * announced by `content-length` is reserved whole before it is read; a chunked one is counted as it arrives.
 */
export class BodyBudget {
  used = 0;
  constructor(public max: number) {}

  /** Reserves `n` bytes; false when they do not fit. */
  take(n: number): boolean {
    if (this.used + n > this.max) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used -= n;
  }
}
