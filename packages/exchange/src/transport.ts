import type { ResponseHeaders } from './errors.js';

/** One upstream request, as a transport sends it: origin and path apart (undici's dispatcher wants them so). */
export interface TransportRequest {
  /** `https://host:port`, no trailing slash. */
  readonly origin: string;
  /** Path and query, starting with `/`. */
  readonly path: string;
  readonly method: string;
  /** Lower-case keys. Carries the endpoint's credentials: never log it. */
  readonly headers: Record<string, string>;
  readonly body: Uint8Array | string | undefined;
  /** Non-stream answers: the transport's own limit on the wait for headers and between body chunks, ms; 0 = none. */
  readonly timeoutMs: number;
}

/** What a transport reports an exchange to: the engine's {@link Attempt} implements it. */
export interface TransportHandler {
  /** The exchange began; `abort` stops it (the transport then reports `onError` with the reason). */
  onConnect(abort: (err: Error) => void): void;
  /** Status and headers (lower-case keys). Returns false to pause the body until `resume`. */
  onResponse(status: number, headers: ResponseHeaders, resume: () => void): boolean;
  /** A chunk of the body. Returns false to pause until `resume`. */
  onData(chunk: Uint8Array): boolean;
  onComplete(): void;
  onError(err: Error): void;
  /**
   * Optional, for fetch transports: offered the `Response` after `onResponse`; true takes it whole (the transport
   * then reads none of its body). The adapter passes a JSON answer on untouched so.
   */
  takeResponse?(res: Response): boolean;
}

/**
 * The small interface the engine sends through: send a request, report status, headers and a body of byte chunks
 * (with back-pressure), abort. lb-server plugs in its undici dispatcher; `@lb/openai-adapter` a WHATWG `fetch`
 * ({@link fetchTransport}).
 */
export interface Transport {
  send(req: TransportRequest, handler: TransportHandler): void;
}

/** A WHATWG fetch function. */
export type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * A {@link Transport} over a WHATWG `fetch` (`fetch()` is read on every send, so a function that returns the current
 * one works: tests that swap `globalThis.fetch` see their swap). The body is read chunk by chunk; a handler that
 * returns false from `onData` stops the reading until it resumes.
 *
 * @example
 * const transport = fetchTransport(() => globalThis.fetch);
 */
export function fetchTransport(fetchFn: () => FetchFn): Transport {
  return { send: (req, handler) => void run(fetchFn(), req, handler) };
}

async function run(fetch: FetchFn, req: TransportRequest, h: TransportHandler): Promise<void> {
  const ctl = new AbortController();
  let reason: Error | undefined;
  let wake: (() => void) | undefined;
  h.onConnect((err) => {
    if (reason !== undefined) return;
    reason = err;
    ctl.abort(err);
    wake?.();
  });
  if (reason !== undefined) return h.onError(reason);
  let res: Response;
  try {
    res = await fetch(req.origin + req.path, {
      method: req.method,
      headers: req.headers,
      body: req.body as BodyInit | undefined,
      signal: ctl.signal,
      redirect: 'manual',
    });
  } catch (e) {
    return h.onError(reason ?? (e as Error));
  }
  const headers: ResponseHeaders = {};
  res.headers.forEach((v, k) => {
    headers[k] = v;
  });
  let paused = false;
  const resume = () => {
    paused = false;
    const w = wake;
    wake = undefined;
    w?.();
  };
  paused = !h.onResponse(res.status, headers, resume);
  const body = res.body;
  if (h.takeResponse?.(res)) return;
  if (body === null) return h.onComplete();
  const reader = body.getReader();
  try {
    for (;;) {
      if (paused) await new Promise<void>((r) => (wake = r));
      if (reason !== undefined) throw reason;
      const r = await reader.read();
      if (r.done) break;
      if (r.value.length > 0 && !h.onData(r.value)) paused = true;
    }
  } catch (e) {
    reader.cancel(reason ?? e).catch(() => {});
    return h.onError(reason ?? (e as Error));
  }
  h.onComplete();
}
