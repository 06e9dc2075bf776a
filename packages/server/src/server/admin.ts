// The admin routes (`/admin/*`): endpoints' state, enabling and disabling them, virtual keys, reload.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { adminRefusal, crossSiteRefusal, type Listener } from '../access.js';
import { sendJson, sendStatus } from '../http.js';
import { adminKeys } from '../spend-routes.js';
import { applyReload } from './apply-reload.js';
import type { ServerState } from './state.js';

export async function routeAdmin(
  st: ServerState,
  req: IncomingMessage,
  res: ServerResponse,
  p: string,
  method: string,
  listener: Listener,
): Promise<void> {
  const { router, logger } = st;
  const refused = adminRefusal(req, listener, st.policy);
  if (refused) return sendStatus(res, refused.status, refused.message);
  if (method === 'GET' && p === '/admin/endpoints') return sendJson(res, 200, router.snapshot());
  if (p === '/admin/keys' || p.startsWith('/admin/keys/')) {
    if (method === 'POST') {
      const crossSite = crossSiteRefusal(req);
      if (crossSite) return sendStatus(res, crossSite.status, crossSite.message);
    }
    return adminKeys(req, res, p, method, st.wallet, (msg, fields) => logger.info(fields, msg));
  }
  if (method !== 'POST') return sendStatus(res, 405, `Use POST for ${p}`);
  const crossSite = crossSiteRefusal(req);
  if (crossSite) return sendStatus(res, crossSite.status, crossSite.message);
  const m = /^\/admin\/endpoints\/([^/]+)\/(disable|enable)$/.exec(p);
  if (m) {
    let id: string;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      return sendStatus(res, 400, 'The endpoint id in the path is not valid percent-encoded UTF-8');
    }
    const enable = m[2] === 'enable';
    if (!router.setEndpointHealth(id, enable, enable ? 'enabled by admin' : 'disabled by admin')) {
      sendStatus(res, 404, `Unknown endpoint ${JSON.stringify(id)}`);
      return;
    }
    logger.info({ endpointId: id }, `endpoint ${enable ? 'enabled' : 'disabled'} by admin`);
    sendJson(res, 200, { id, enabled: enable, status: router.getHealth(id)?.status });
    return;
  }
  if (p === '/admin/reload') {
    if (!st.options.reloadConfig) {
      sendStatus(res, 501, 'This server was started without a reloadable config');
      return;
    }
    try {
      const changes = await applyReload(st, undefined);
      sendJson(res, 200, { reloaded: true, ...changes });
      return;
    } catch (e) {
      sendStatus(res, 400, `Reload failed, config unchanged: ${(e as Error).message}`);
      return;
    }
  }
  sendStatus(res, 404, `Unknown admin route ${method} ${p}`);
}
