import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import { Attempt, type Timers, type Transport } from '@lb/exchange';
import type { Agent as AgentType, Dispatcher } from 'undici';
import { skipsInterimContinue } from './interim.js';

// The modules themselves, not the package index (see undici-parts.d.ts), and required rather than imported: an ESM
// import of a CommonJS module has Node's loader lex its source for export names, and lexing undici's util.js got
// the lexer optimised by TurboFan on a background thread whose malloc arena (~3 MB) then stays in the process.
const requireCjs = createRequire(import.meta.url);
const Agent = requireCjs('undici/lib/dispatcher/agent.js') as typeof import('undici/lib/dispatcher/agent.js');
const { parseHeaders } = requireCjs('undici/lib/core/util.js') as typeof import('undici/lib/core/util.js');
// undici's own timers: above a second, one shared coarse tick (±0.5 s) instead of a Node timer per stream.
const timers = requireCjs('undici/lib/util/timers.js') as typeof import('undici/lib/util/timers.js');

/**
 * One upstream exchange through undici: the engine's {@link Attempt} (`@lb/exchange`: the gate, error events,
 * probation, timeouts, usage) as an undici dispatch handler. It implements undici's native handler interface
 * (`onConnect`/`onHeaders`/`onData`/`onComplete`/`onError`): the controller-style one costs a wrapper, a controller
 * and a parse of the (absent) trailers per request. Only the headers need translating: raw pairs to an object.
 */
export class UpstreamCall extends Attempt implements Dispatcher.DispatchHandler {
  declare headers: IncomingHttpHeaders;

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // RFC 9110 §15.2: an unexpected 1xx is skipped.
    if (statusCode < 200) return true;
    return this.onResponse(statusCode, parseHeaders(rawHeaders) as IncomingHttpHeaders, resume);
  }
}

/** undici's coarse shared timers (above a second, one tick for all instead of a Node timer per stream). */
export const undiciTimers: Timers = {
  setTimeout: (fn, ms, arg) => timers.setTimeout(fn, ms, arg),
  clearTimeout: (t) => timers.clearTimeout(t as import('undici/lib/util/timers.js').Timer),
};

/**
 * lb-server's {@link Transport}: an undici dispatcher (keep-alive pools per origin). Its handler must be an
 * {@link UpstreamCall}. A non-stream answer's timeout is undici's own (headers, then between body chunks); a
 * stream's first-byte and idle timeouts are the engine's.
 */
export function undiciTransport(agent: Dispatcher): Transport {
  return {
    send(req, handler) {
      const ms = req.timeoutMs;
      agent.dispatch(
        {
          origin: req.origin,
          path: req.path,
          method: req.method as 'POST',
          headers: req.headers,
          body: req.body as Buffer | string | undefined,
          headersTimeout: ms,
          bodyTimeout: ms,
          // One request per connection at a time anyway (no pipelining): not blocking spares undici a resume.
          blocking: false,
        },
        handler as UpstreamCall,
      );
    },
  };
}

/** Transport settings. */
export interface TransportOptions {
  connectTimeoutMs: number;
  http2: boolean;
  connectionsPerOrigin: number | null;
}

/**
 * Keep-alive connection pools per upstream origin (an undici `Agent` keeps one `Pool` per origin), with `noDelay`,
 * a connect timeout and HTTP/2 via ALPN where the upstream offers it.
 */
export function createTransport(o: TransportOptions): AgentType {
  return new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connections: o.connectionsPerOrigin,
    allowH2: o.http2,
    connect: skipsInterimContinue({ allowH2: o.http2, timeout: o.connectTimeoutMs, noDelay: true }),
  });
}

export type { EarlyResponder, Sink } from '@lb/exchange';
export { HOLD_MAX_BYTES, HoldBudget, StreamOpenError } from '@lb/exchange';
