import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Listener } from '../access.js';
import { sendStatus } from '../http.js';
import { DashboardHub, type DashboardHubOptions, type DashboardSources } from './hub.js';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './page.js';

export type { DashboardFrame, EndpointRow, RecentRequest, StripEvent } from './hub.js';
export { DASHBOARD_HTML, DashboardHub };

/** Why a request may not use the admin surface (the server's one admin check), or undefined when it may. */
export type AdminDenial = (
  req: IncomingMessage,
  listener: Listener,
) => { status: number; message: string } | undefined;

/** The server's dashboard: the page, its event stream, and the hub that feeds it. */
export interface Dashboard {
  readonly hub: DashboardHub;
  /** Serves `GET /dashboard` and `GET /dashboard/events`; false when `path` is not one of them. */
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    method: string,
    listener: Listener,
  ): boolean;
  /** Ends every event stream (graceful shutdown must not wait on them). */
  close(): void;
}

const PAGE = Buffer.from(DASHBOARD_HTML);

/**
 * Builds the dashboard. Access is the admin routes' own check (`denied`), so the dashboard follows whatever rules
 * they follow. The page itself carries no data: a request the check refuses only for want of the key (401) still
 * gets it, as the form that asks for the key; everything with data (`/dashboard/events`) and every action (the
 * admin routes) needs the check to pass.
 */
export function createDashboard(
  sources: DashboardSources,
  denied: AdminDenial,
  opts: DashboardHubOptions = {},
): Dashboard {
  const hub = new DashboardHub(sources, opts);
  const streams = new Set<ServerResponse>();
  return {
    hub,
    handle(req, res, path, method, listener) {
      if (path !== '/dashboard' && path !== '/dashboard/' && path !== '/dashboard/events') return false;
      if (method !== 'GET' && method !== 'HEAD') {
        sendStatus(res, 405, `Use GET for ${path}`);
        return true;
      }
      const d = denied(req, listener);
      if (path === '/dashboard/events') {
        if (d) {
          sendStatus(res, d.status, d.message);
          return true;
        }
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          'x-accel-buffering': 'no',
        });
        if (method === 'HEAD') {
          res.end();
          return true;
        }
        res.flushHeaders();
        streams.add(res);
        const off = hub.add(res);
        res.on('close', () => {
          streams.delete(res);
          off();
        });
        return true;
      }
      if (d && d.status !== 401) {
        sendStatus(res, d.status, d.message);
        return true;
      }
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': PAGE.length,
        'cache-control': 'no-store',
        'content-security-policy': DASHBOARD_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      });
      res.end(method === 'HEAD' ? undefined : PAGE);
      return true;
    },
    close() {
      hub.close();
      for (const s of streams) s.end();
      streams.clear();
    },
  };
}
