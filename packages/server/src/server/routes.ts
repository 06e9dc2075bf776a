// The operations routes on either listener: liveness, `/health`, `/metrics`, `/stats`, `/models`, then the admin
// routes (`admin.ts`) and the dashboard.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { maskKey, type Router } from '@lb/core';
import { type FallbackConfig, modelsWithFallbacks } from '@lb/exchange';
import { type Listener, mayReadOperations } from '../access.js';
import { clientKeyOf, sendJson, sendStatus } from '../http.js';
import { routeAdmin } from './admin.js';
import type { ServerState } from './state.js';

export function internalFailed(st: ServerState, err: unknown, res: ServerResponse): void {
  st.logger.error({ err }, 'internal route failed');
  if (!res.headersSent) sendStatus(res, 500, 'Internal gateway error');
}

/** Answers a request for anything but the proxy (`url` without `/v1`). */
export async function routeInternal(
  st: ServerState,
  req: IncomingMessage,
  res: ServerResponse,
  url: string,
  listener: Listener,
): Promise<void> {
  const { obs, policy, settings } = st;
  const q = url.indexOf('?');
  const p = q >= 0 ? url.slice(0, q) : url;
  const method = req.method ?? 'GET';
  req.resume();
  if (method === 'GET' || method === 'HEAD') {
    if (p === '/' || p === '/livez' || p === '/healthz/live') {
      sendJson(res, 200, { status: 'ok', name: 'lb-server', version: st.options.version });
      return;
    }
    if (p === '/health' || p === '/healthz') {
      const h = obs.health();
      // Probes keep their status code; the detail (endpoints, URLs, key masks) is for operators only.
      sendJson(
        res,
        h.httpStatus,
        mayReadOperations(req, listener, policy)
          ? h.body
          : { status: (h.body as { status?: string }).status },
      );
      return;
    }
    if (p === '/metrics' || p === '/stats') {
      if (!mayReadOperations(req, listener, policy))
        return sendStatus(
          res,
          401,
          `${p} needs a gateway key (LB_API_KEYS) or the admin key (LB_ADMIN_KEY) on this port, or serve it without a key on the operations listener (LB_OPS_PORT)`,
        );
      if (p === '/stats') return sendJson(res, 200, { ...obs.stats(), spend: st.wallet.ledger.snapshot() });
      if (!settings.metricsEnabled) {
        sendStatus(res, 404, 'Metrics are disabled (METRICS_ENABLED=false)');
        return;
      }
      const text = await obs.metricsText();
      res.writeHead(200, {
        'content-type': obs.metricsContentType,
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
      return;
    }
    if (p === '/models' && listener === 'main') {
      if (!checkClient(st, req, res)) return;
      sendJson(res, 200, modelList(st.router, st.px.fallbacks));
      return;
    }
  }
  if (p.startsWith('/admin/')) return routeAdmin(st, req, res, p, method, listener);
  if (p.startsWith('/dashboard') && st.dashboard.handle(req, res, p, method, listener)) return;
  sendStatus(res, 404, `Unknown route ${method} ${p}`);
}

function checkClient(st: ServerState, req: IncomingMessage, res: ServerResponse): boolean {
  const clients = st.policy.clients;
  if (clients === undefined) return true;
  const key = clientKeyOf(req);
  if (key !== undefined && clients.identify(key) !== undefined) return true;
  sendStatus(res, 401, key === undefined ? 'Missing API key' : `Incorrect API key provided: ${maskKey(key)}`);
  return false;
}

function modelList(router: Router, fallbacks: FallbackConfig | undefined): unknown {
  return {
    object: 'list',
    data: modelsWithFallbacks(router.models(), fallbacks).map((id) => ({
      id,
      object: 'model',
      created: 0,
      owned_by: 'lb',
    })),
  };
}
