import { isAbortError, redact, type Usage } from '@lb/core';
import { type Attempt, dropAskedUsage, ExchangeTimeoutError, type Sink, UsageTail } from '@lb/exchange';
import { StreamInterruptedError, StreamTimeoutError } from '../errors.js';

/** Settings of one stream handed to the caller. */
export interface StreamBodyOptions {
  endpointId: string;
  idleTimeoutMs: number;
  /** The caller's signal: aborting it ends the stream with its reason. */
  signal: AbortSignal | undefined;
  reportUsage: (usage: Usage) => void;
  /** Secrets to keep out of error messages. */
  secrets: readonly (string | undefined)[];
  /** lb asked the upstream for usage the caller did not: its usage chunk is taken out of the caller's stream. */
  dropAskedUsage?: boolean;
}

/**
 * The body handed to the caller: the engine's committed stream (`@lb/exchange`'s {@link Attempt}: whole events, the
 * idle timeout, usage, the router's hold) as a WHATWG stream with back-pressure. A break or an idle timeout after the
 * first byte errors it at once with a typed error ({@link StreamInterruptedError}, {@link StreamTimeoutError}); the
 * end, an error or a cancel ends the router's hold exactly once.
 */
export function streamBody(call: Attempt, o: StreamBodyOptions): ReadableStream<Uint8Array> {
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  let settled = false;
  const signal = o.signal;
  /** The stream counts as broken when the upstream sent an error event, however the caller then ends it. */
  const broke = () =>
    call.upstreamError
      ? routerError('StreamInterruptedError', redact('the stream sent an error event', o.secrets))
      : undefined;
  const settle = (error?: unknown) => {
    if (settled) return;
    settled = true;
    signal?.removeEventListener('abort', onAbort);
    const usage = call.usage();
    if (usage) o.reportUsage(usage);
    const release = call.release;
    call.release = undefined;
    release?.(error);
  };
  function onAbort() {
    const reason =
      signal?.reason ?? Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
    if (settled) return;
    settle();
    call.abort(
      reason instanceof Error ? reason : Object.assign(new Error(String(reason)), { name: 'AbortError' }),
    );
    try {
      ctl.error(reason);
    } catch {
      // already closed
    }
  }
  const drop = o.dropAskedUsage === true;
  const sink: Sink = {
    data(chunk) {
      ctl.enqueue(drop ? dropAskedUsage(chunk) : chunk);
      return (ctl.desiredSize ?? 0) > 0;
    },
    end() {
      settle(broke());
      try {
        ctl.close();
      } catch {
        // cancelled
      }
    },
    error(err) {
      if (settled) return;
      if (signal?.aborted || isAbortError(err)) return onAbort();
      let shown: Error;
      if (err instanceof ExchangeTimeoutError)
        shown = new StreamTimeoutError(o.endpointId, 'idle', o.idleTimeoutMs);
      else {
        const msg = redact(String(err?.message ?? err), o.secrets);
        const code = (err as { cause?: { code?: unknown } })?.cause?.code;
        shown = new StreamInterruptedError(
          o.endpointId,
          call.delivered,
          code ? `${msg} (${code})` : msg,
          err,
        );
      }
      settle(err);
      try {
        ctl.error(shown);
      } catch {
        // already closed
      }
    },
  };
  let attached = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        ctl = controller;
        if (signal) {
          if (signal.aborted) return onAbort();
          signal.addEventListener('abort', onAbort, { once: true });
        }
      },
      pull() {
        // Attached at the caller's first read, not in `start`: a body that came whole with its headers (the
        // dispatcher delivers it in the same step) must not end, and settle the router's hold, before the router has
        // seen the attempt succeed.
        if (attached) call.resume();
        else {
          attached = true;
          call.attach(sink);
        }
      },
      cancel(reason) {
        // The caller stopped reading: not the endpoint's fault, unless it stopped at the upstream's error event.
        settle(broke());
        call.abort(
          reason instanceof Error ? reason : Object.assign(new Error('cancelled'), { name: 'AbortError' }),
        );
      },
    },
    { highWaterMark: 0 },
  );
}

/** A failure as the router should classify it: by kind (a broken stream), not by a status it would render with. */
function routerError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, code: 'ERR_LB_STREAM' });
}

/**
 * A JSON answer whose body reports its token usage (`reportUsage`) once it has been read through: the bytes pass
 * unchanged; the usage object sits at the end (read by the engine's {@link UsageTail}, as lb-server reads it).
 * `headers`: the new response's (the body is already decoded: no upstream length or encoding).
 */
export function withUsage(res: Response, reportUsage: (usage: Usage) => void, headers: Headers): Response {
  if (!res.body) return res;
  const tail = new UsageTail(false);
  const body = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        tail.push(chunk);
        controller.enqueue(chunk);
      },
      flush() {
        const usage = tail.usage();
        if (usage) reportUsage(usage);
      },
    }),
  );
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
}
