// The adapter's default transport: undici's dispatcher API on the process's global dispatcher (the one Node's
// `fetch` uses, and what `setGlobalDispatcher` sets — a proxy agent included). A call through it costs about a third
// of the CPU of the same call through `fetch` (no Request, Headers, WHATWG streams or fetch controller on the way up).
import { createRequire } from 'node:module';
import type { ResponseHeaders, Transport, TransportHandler } from '@lb/exchange';
import type { Dispatcher } from 'undici';

// The module itself, not the package index (which loads fetch, WebSocket, the caches and mocks too).
const requireCjs = createRequire(import.meta.url);
/** undici's modules, loaded at the first call through the dispatcher (never, when a `fetch` is in use). */
let undici:
  | {
      getGlobalDispatcher(): Dispatcher;
      /** Raw header pairs to one object (lower-case names), as lb-server reads them. */
      parseHeaders(raw: Buffer[]): ResponseHeaders;
    }
  | undefined;

function loadUndici(): NonNullable<typeof undici> {
  const { getGlobalDispatcher } = requireCjs('undici/lib/global.js');
  const { parseHeaders } = requireCjs('undici/lib/core/util.js');
  undici = { getGlobalDispatcher, parseHeaders };
  return undici;
}

/** One exchange as undici's native dispatch handler, reporting to the engine's handler. */
class DispatchCall implements Dispatcher.DispatchHandler {
  readonly #h: TransportHandler;
  constructor(h: TransportHandler) {
    this.#h = h;
  }
  onConnect(abort: (err?: Error) => void): void {
    this.#h.onConnect(abort as (err: Error) => void);
  }
  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    // RFC 9110 §15.2: an unexpected 1xx is skipped.
    if (status < 200) return true;
    return this.#h.onResponse(status, undici!.parseHeaders(raw), resume);
  }
  onData(chunk: Buffer): boolean {
    return this.#h.onData(chunk);
  }
  onComplete(): void {
    this.#h.onComplete();
  }
  onError(err: Error): void {
    this.#h.onError(err);
  }
}

/**
 * A {@link Transport} over the global undici dispatcher. Upstream answers come as they are encoded: the request asks
 * for none (`accept-encoding: identity`), as a proxy's hop would, since nothing here decodes a compressed body.
 */
export const dispatchTransport: Transport = {
  send(req, handler) {
    const headers = req.headers;
    headers['accept-encoding'] = 'identity';
    const ms = req.timeoutMs;
    const call = new DispatchCall(handler);
    try {
      // The global dispatcher read per call: a later `setGlobalDispatcher` is followed.
      (undici ?? loadUndici()).getGlobalDispatcher().dispatch(
        {
          origin: req.origin,
          path: req.path,
          method: req.method as Dispatcher.HttpMethod,
          headers,
          body: req.body,
          // 0: the dispatcher's own defaults (those fetch has); the engine and the router bound the waits.
          headersTimeout: ms > 0 ? ms : undefined,
          bodyTimeout: ms > 0 ? ms : undefined,
        },
        call,
      );
    } catch (e) {
      // A request undici refuses outright (a header value it cannot send): the attempt fails, as fetch's would.
      handler.onError(e as Error);
    }
  },
};
