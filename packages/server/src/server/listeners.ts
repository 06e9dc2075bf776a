// The two HTTP listeners' request handlers: the main one (gateway key, client limit and body budget, then the
// proxy or the operations routes) and the operations one (operations and admin routes only).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { maskKey } from '@lb/core';
import { clientKeyOf, limitHeaders, sendStatus } from '../http.js';
import { BadPath, normalizeTarget } from '../paths.js';
import { Exchange } from '../proxy/exchange.js';
import type { ClientIdentity } from '../spend.js';
import { internalFailed, routeInternal } from './routes.js';
import type { ServerState } from './state.js';

const PROXY_PREFIXES = [
  '/chat/',
  '/completions',
  '/embeddings',
  '/images/',
  '/audio/',
  '/moderations',
  '/responses',
  '/files',
  '/batches',
  '/uploads',
  '/fine_tuning/',
  '/vector_stores',
  '/assistants',
  '/threads',
];

/** The main listener's handler: each request counts in flight until its response closes. */
export function mainHandler(st: ServerState): (req: IncomingMessage, res: ServerResponse) => void {
  const { router, obs, px, bodies } = st;
  const onDone = () => {
    st.inFlight--;
    if (st.closing && st.inFlight === 0) st.drained?.();
  };

  /**
   * The request's share of the in-flight body budget (`maxInflightBodyBytes`), given back when its response closes;
   * the `done` to hand the exchange, or undefined when the request was answered here (503/413, nothing read).
   */
  const withBody = (
    req: IncomingMessage,
    res: ServerResponse,
    rateLimit: number,
    rateRemaining: number,
  ): (() => void) | undefined => {
    const cl = req.headers['content-length'];
    if (cl !== undefined) {
      const n = Number(cl);
      // Over the body limit: the exchange answers 413 and reads the rest without keeping it.
      if (!(n > 0) || n > st.settings.bodyLimitBytes) return onDone;
      if (bodies.take(n))
        return () => {
          bodies.give(n);
          onDone();
        };
      res.on('close', onDone);
      res.setHeader('connection', 'close');
      const tooBig = n > bodies.max;
      sendStatus(
        res,
        tooBig ? 413 : 503,
        tooBig
          ? `Request body of ${n} bytes exceeds what the gateway reads at once (${bodies.max} bytes, LB_MAX_INFLIGHT_BODY_BYTES)`
          : 'The gateway is reading too many request bodies at once (LB_MAX_INFLIGHT_BODY_BYTES): retry shortly',
        1000,
        rateLimit < 0 ? undefined : limitHeaders(rateLimit, rateRemaining),
      );
      req.resume();
      return undefined;
    }
    if (req.headers['transfer-encoding'] === undefined) return onDone;
    // Chunked: counted as it arrives; past the budget the request is cut (its size was never announced).
    let got = 0;
    req.on('data', (c: Buffer) => {
      got += c.length;
      bodies.used += c.length;
      if (bodies.used > bodies.max) req.destroy();
    });
    return () => {
      bodies.give(got);
      onDone();
    };
  };

  return (req, res) => {
    st.inFlight++;
    if (st.closing) res.setHeader('connection', 'close');
    const url = normalizeTarget(req.url ?? '/');
    if (url instanceof BadPath) {
      res.on('close', onDone);
      req.resume();
      sendStatus(res, 400, url.message);
      return;
    }
    let path: string | undefined;
    if (url.startsWith('/v1/')) path = url.slice(3);
    else {
      for (const p of PROXY_PREFIXES) {
        if (url.startsWith(p)) {
          path = url;
          break;
        }
      }
    }
    if (
      path !== undefined &&
      !path.startsWith('/health') &&
      !(isModelsList(path, req.method) && router.models().length > 0)
    ) {
      let client: string | undefined;
      let clientId: string | undefined;
      let who: ClientIdentity | undefined;
      const clients = st.policy.clients;
      if (clients !== undefined) {
        const key = clientKeyOf(req);
        who = key === undefined ? undefined : clients.identify(key, req.socket);
        if (who === undefined) {
          res.on('close', onDone);
          req.resume();
          sendStatus(
            res,
            401,
            key === undefined
              ? 'Missing API key: send your lb gateway key as "Authorization: Bearer <key>"'
              : `Incorrect API key provided: ${maskKey(key)}`,
          );
          return;
        }
        client = who.mask;
        clientId = who.id;
      } else clientId = client = req.socket.remoteAddress;
      const limiter = st.limiter;
      const lim = who !== undefined && who.key.name !== undefined ? st.limiters.of(who, limiter) : limiter;
      // The limit's headers go with the response's own (`Exchange.rateHeaders`), never by `setHeader`: that would
      // take `writeHead` off its fast path for every header the upstream sent.
      let rateLimit = -1;
      let rateRemaining = 0;
      if (lim !== undefined) {
        const r = lim.take(clientId ?? 'anonymous');
        rateLimit = r.limit;
        rateRemaining = r.remaining;
        if (!r.allowed) {
          res.on('close', onDone);
          req.resume();
          obs.recordRequest({
            requestId: '',
            client,
            method: req.method ?? 'GET',
            path,
            model: undefined,
            stream: false,
            status: 429,
            latencyMs: 0,
            attempts: 0,
            errorType: 'client_rate_limited',
          });
          sendStatus(
            res,
            429,
            lim === limiter
              ? `Rate limit reached for this client: ${r.limit} requests per ${st.settings.clientRateLimit.windowMs} ms`
              : `Rate limit reached for key ${who!.mask}: ${r.limit} requests per ${st.limiters.windowOf(lim)} ms`,
            r.retryAfterMs,
            limitHeaders(r.limit, r.remaining),
          );
          return;
        }
      }
      // The exchange's own 'close' listener counts the request done (one listener per response).
      const done = withBody(req, res, rateLimit, rateRemaining);
      if (done !== undefined) {
        const ex = new Exchange(px, req, res, path, client, done);
        ex.who = who;
        ex.rateLimit = rateLimit;
        ex.rateRemaining = rateRemaining;
        ex.run();
      }
      return;
    }
    res.on('close', onDone);
    routeInternal(st, req, res, path ?? url, 'main').catch((err) => internalFailed(st, err, res));
  };
}

/** The operations listener's handler: admin and operations routes only (no proxying), with no key unless `adminKey` is set. */
export function opsHandler(st: ServerState): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = normalizeTarget(req.url ?? '/');
    if (url instanceof BadPath) {
      req.resume();
      sendStatus(res, 400, url.message);
      return;
    }
    routeInternal(st, req, res, url.startsWith('/v1/') ? url.slice(3) : url, 'ops').catch((err) =>
      internalFailed(st, err, res),
    );
  };
}

function isModelsList(path: string, method: string | undefined): boolean {
  return method === 'GET' && (path === '/models' || path.startsWith('/models?'));
}
