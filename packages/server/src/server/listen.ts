// The HTTP listeners: the main one and the optional operations one, and starting them (with the shared store and
// the admin API's keys ready first, and warnings for an open gateway).
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerClientError } from '../front.js';
import { isLoopback } from '../options.js';
import { mainHandler, opsHandler } from './listeners.js';
import type { ServerState } from './state.js';

/** The listeners, not yet listening: `ops` only with `settings.opsPort`. */
export function createListeners(st: ServerState): { http: Server; ops: Server | undefined } {
  // Header and request timeouts are checked every second (node's default: every 30 s), so a stalled client gets its
  // 408 on time.
  const http = createHttpServer(
    { noDelay: true, keepAlive: true, keepAliveTimeout: 65_000, connectionsCheckingInterval: 1_000 },
    mainHandler(st),
  );
  http.keepAliveTimeout = 65_000;
  http.on('clientError', answerClientError);
  const ops =
    st.settings.opsPort === undefined
      ? undefined
      : createHttpServer({ noDelay: true, keepAlive: true }, opsHandler(st));
  ops?.on('clientError', answerClientError);
  return { http, ops };
}

/** Starts listening (the operations listener first, its URL handed to `opsListening`); resolves with the main URL. */
export async function startListening(
  st: ServerState,
  http: Server,
  ops: Server | undefined,
  port: number,
  host: string,
  opsListening: (url: string) => void,
): Promise<string> {
  const { shared, logger, settings, policy } = st;
  // The first requests' limits are shared too: Redis gets up to 1 s to be ready; past that the replica starts on
  // local state (warned), and syncs once Redis answers.
  if (shared && !(await shared.ready(1_000)))
    logger.warn('shared rate-limit store (Redis) not ready after 1 s: starting on local state');
  await st.wallet
    .loadVault()
    .catch((err) =>
      logger.warn({ err: (err as Error).message }, "could not load the admin API's keys from the store"),
    );
  if (ops !== undefined && !ops.listening)
    opsListening(await listenOn(ops, settings.opsPort ?? 0, settings.opsHost));
  const url = await listenOn(http, port, host);
  if (!policy.clients && !isLoopback(host))
    logger.warn(
      { host },
      'no client keys configured (LB_API_KEYS) and bound beyond loopback: anyone who can reach this port can use your upstream keys',
    );
  if (ops !== undefined && !isLoopback(settings.opsHost) && policy.adminKey === undefined)
    logger.warn(
      { host: settings.opsHost },
      'the operations listener (LB_OPS_PORT) is bound beyond loopback without an admin key (LB_ADMIN_KEY): anyone who can reach it can disable endpoints and reload the config',
    );
  return url;
}

/** Listens on `port`/`host`; resolves with the URL. */
function listenOn(s: Server, port: number, host: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => {
      s.off('error', reject);
      const a = s.address() as AddressInfo;
      const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve(`http://${h}:${a.port}`);
    });
  });
}
