import { maskKey } from '@lb/core';
import { loadPino } from './logger.js';
import type { ClientRequestRecord } from './types.js';

/** Default path of the request log. */
export const DEFAULT_REQUEST_LOG_PATH = './logs/requests.jsonl';

/** Bytes buffered while the disk (or a piped stdout) lags; beyond it lines are dropped rather than eating memory. */
const MAX_BUFFER = 16 * 1024 * 1024;

type Sink = ReturnType<ReturnType<typeof loadPino>['destination']>;

/**
 * The request log: one JSON line per client request, appended asynchronously (sonic-boom through pino). Holds only
 * what the record carries — never a key (a client id that looks like one is masked), never a body, never a query.
 */
export class RequestLog {
  readonly path: string;
  readonly #sink: Sink;
  #closed = false;

  constructor(path: string | undefined) {
    this.path = path ?? DEFAULT_REQUEST_LOG_PATH;
    const pino = loadPino();
    this.#sink =
      this.path === '-'
        ? pino.destination({ dest: 1, sync: false, maxLength: MAX_BUFFER })
        : pino.destination({
            dest: this.path,
            sync: false,
            mkdir: true,
            append: true,
            maxLength: MAX_BUFFER,
          });
    // A full disk or a vanished directory must not crash the server.
    this.#sink.on('error', () => {});
  }

  write(rec: ClientRequestRecord, now: number): void {
    if (this.#closed) return;
    const q = rec.path.indexOf('?');
    const u = rec.usage;
    const line = JSON.stringify({
      time: new Date(now).toISOString(),
      requestId: rec.requestId,
      client: clientLabel(rec.client),
      method: rec.method,
      path: q === -1 ? rec.path : rec.path.slice(0, q),
      model: rec.model,
      stream: rec.stream,
      endpoint: rec.endpointId,
      attempts: rec.attempts,
      status: rec.status,
      latencyMs: round(rec.latencyMs),
      ttfbMs: rec.ttfbMs === undefined ? undefined : round(rec.ttfbMs),
      errorType: rec.errorType,
      upstreamRequestId: rec.upstreamRequestId,
      clientRequestId: rec.clientRequestId,
      promptTokens: u?.prompt_tokens,
      completionTokens: u?.completion_tokens,
      totalTokens: u?.total_tokens,
      key: rec.key,
      costUsd: rec.costUsd,
    });
    this.#sink.write(`${line}\n`);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const sink = this.#sink;
    return new Promise<void>((resolve) => {
      const done = () => resolve();
      if (this.path === '-') {
        sink.flush(() => done());
        return;
      }
      sink.once('close', done);
      sink.once('error', done);
      sink.end();
    });
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** The server passes a masked client id or an IP; anything that still looks like a secret is masked here. */
export function clientLabel(client: string | undefined): string | undefined {
  if (client === undefined) return undefined;
  if (client.length >= 32 && !client.includes('...') && /^[\w-]+$/.test(client)) return maskKey(client);
  return client;
}
