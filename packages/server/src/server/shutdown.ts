// A graceful close: stop accepting, let requests in flight finish for a while, end the streams left with an SSE
// error event, then release everything the server holds.
import type { Server } from 'node:http';
import type { ServerState } from './state.js';

/** What the server holds beyond its state, released at the end. */
export interface ShutdownParts {
  http: Server;
  ops: Server | undefined;
  transport: { close(): Promise<void> };
  /** Disposers of the server's own bus listeners and tracing. */
  dispose: Array<() => void>;
}

export async function shutDown(
  st: ServerState,
  parts: ShutdownParts,
  timeoutMs: number,
): Promise<{ drained: boolean; cut: number }> {
  const { http, ops } = parts;
  st.closing = true;
  st.dashboard.close();
  const stopped = new Promise<void>((r) => (http.listening ? http.close(() => r()) : r()));
  http.closeIdleConnections();
  if (ops?.listening) {
    ops.close();
    ops.closeAllConnections();
  }
  let ok = true;
  if (st.inFlight > 0) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    ok = await new Promise<boolean>((resolve) => {
      st.drained = () => resolve(true);
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    clearTimeout(timer);
  }
  const cut = st.inFlight;
  const streams = st.px.streams;
  if (!ok && streams.size > 0) {
    // Streams still running end with an SSE error event, not a cut connection; written before the sockets close.
    for (const x of [...streams]) x.cutForShutdown();
    await new Promise((r) => setImmediate(r));
  }
  http.closeAllConnections();
  await stopped;
  for (const d of parts.dispose) d();
  st.attached.dispose();
  await parts.transport.close().catch(() => {});
  await st.shared?.close().catch(() => {});
  await st.obs.close().catch(() => {});
  return { drained: ok, cut };
}
