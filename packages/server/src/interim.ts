import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

// Required, not imported: see upstream.ts.
const buildConnector = createRequire(import.meta.url)(
  'undici/lib/core/connect.js',
) as typeof import('undici/lib/core/connect.js');

// RFC 9110 §15.2: a client must be able to parse one or more 1xx responses before the final one, even when it did not
// ask for them. undici 7 answers an unsolicited `100 Continue` by destroying the socket ("bad response",
// lib/dispatcher/client-h1.js), which lb would count against the endpoint and fail over. Its other 1xx responses (103
// Early Hints…) it passes over itself. This connector hands undici sockets that drop a `100` interim response at the
// start of an HTTP/1.1 response, and only there: a response's body is never looked at.

import type { buildConnector as BuildConnector } from 'undici';

type Connector = BuildConnector.connector;
type RawConnector = (opts: object, cb: (err: Error | null, socket: Socket | null) => void) => void;

const HTTP1 = Buffer.from('HTTP/1.');
const HEAD_END = Buffer.from('\r\n\r\n');
/** `HTTP/1.x 100 `: what an interim `100 Continue` starts with (12 bytes, the version's minor at 7). */
const isContinue = (b: Buffer) =>
  b.length >= 13 &&
  b.compare(HTTP1, 0, 7, 0, 7) === 0 &&
  b[8] === 0x20 &&
  b[9] === 0x31 &&
  b[10] === 0x30 &&
  b[11] === 0x30 &&
  b[12] === 0x20;

/**
 * undici's own connector (`connect` options as undici takes them), its HTTP/1.1 sockets made to skip an unsolicited
 * `100 Continue`. A socket negotiated to HTTP/2 is left alone (h2 carries 1xx in frames undici already handles).
 */
export function skipsInterimContinue(options: Record<string, unknown>): Connector {
  const connect = buildConnector(options) as RawConnector;
  const wrapped: RawConnector = (opts, cb) =>
    connect(opts, (err, socket) => {
      if (err === null && socket !== null && (socket as { alpnProtocol?: unknown }).alpnProtocol !== 'h2')
        watch(socket);
      cb(err, socket);
    });
  return wrapped as unknown as Connector;
}

/**
 * Between a request's head going out and its response's first bytes, the socket is "expecting": what `read()` gives
 * undici then is checked for a `100` interim response, dropped whole (over as many reads as it takes). Once a final
 * response has started, reads pass through untouched until the next request's head (undici runs one request at a time
 * on an HTTP/1.1 connection). A request head is the first write undici makes for a request: a string starting with
 * its method.
 */
function watch(socket: Socket): void {
  let expecting = false;
  let pending: Buffer | undefined;
  const write = socket.write;
  socket.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (typeof chunk === 'string') {
      const c = chunk.charCodeAt(0);
      if (c >= 65 && c <= 90 && chunk.indexOf(' HTTP/1.1\r\n') > 0) expecting = true;
    }
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Socket['write'];
  const read = socket.read;
  socket.read = function (this: Socket, size?: number) {
    let chunk = read.call(this, size) as Buffer | null;
    if (!expecting) return chunk;
    for (;;) {
      if (chunk === null) return null;
      if (pending !== undefined) {
        chunk = Buffer.concat([pending, chunk]);
        pending = undefined;
      }
      if (chunk.length < 13 && HTTP1.subarray(0, Math.min(chunk.length, 7)).equals(chunk.subarray(0, 7))) {
        pending = chunk; // too short to tell: wait for more
        chunk = read.call(this, size) as Buffer | null;
        continue;
      }
      if (!isContinue(chunk)) {
        expecting = false; // the final response began
        return chunk;
      }
      const end = chunk.indexOf(HEAD_END);
      if (end < 0) {
        pending = chunk; // an interim response cut across reads
        chunk = read.call(this, size) as Buffer | null;
        continue;
      }
      const rest = chunk.subarray(end + 4);
      chunk = rest.length > 0 ? rest : (read.call(this, size) as Buffer | null);
    }
  } as Socket['read'];
}
