import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { clientKeyOf } from './http.js';
import type { ClientIdentity } from './spend.js';

/**
 * Who may use what, decided from keys only — never from the peer address: behind a reverse proxy on the same host
 * every client is 127.0.0.1. Two listeners: the main one (clients) and the optional operations one (`opsPort`, bound
 * to 127.0.0.1 by default), where admin and operations routes answer without a key unless `adminKey` is set.
 */
export type Listener = 'main' | 'ops';

/** A refusal: status and message for an OpenAI-shaped error. */
export interface Refusal {
  status: number;
  message: string;
}

export type { ClientIdentity } from './spend.js';

/** The gateway keys (`spend.ts`'s wallet: `LB_API_KEYS` and `[[keys]]`, and the admin API's). */
export interface ClientKeys {
  /** The identity of a presented key, or undefined when it is not one (`conn`: the client's connection). */
  identify(secret: string | undefined, conn?: object): ClientIdentity | undefined;
  /** True while any key is held: then every client request needs one. */
  readonly enabled: boolean;
}

/** The access settings one config gives, swapped whole on reload. */
export interface AccessPolicy {
  /** Gateway keys; undefined: the gateway is open (no key held). */
  readonly clients: ClientKeys | undefined;
  readonly adminKey: string | undefined;
}

/**
 * Builds the access policy of a config. Keys are looked up by their SHA-256 (`@lb/spend`'s `KeyRing`); a client's
 * limiter id is an HMAC of the key's digest under a secret derived from the whole set of configured keys: replicas
 * with the same keys count a client under the same id in a shared Redis, and what Redis holds reveals no key. The
 * gateway is keyed while any key is held, so a first key created through the admin API closes an open gateway.
 */
export function accessPolicy(keys: ClientKeys, adminKey: string | undefined): AccessPolicy {
  return {
    get clients() {
      return keys.enabled ? keys : undefined;
    },
    adminKey,
  };
}

const ADMIN_OFF =
  'Admin routes are off on this port: set LB_ADMIN_KEY to serve them here to requests that send it ' +
  '(x-admin-key or Authorization: Bearer), or set LB_OPS_PORT to serve them on a separate operations listener ' +
  '(bound to 127.0.0.1 by default)';

/** Why an admin request is refused, or undefined when it may go on. */
export function adminRefusal(
  req: IncomingMessage,
  listener: Listener,
  policy: AccessPolicy,
): Refusal | undefined {
  const adminKey = policy.adminKey;
  if (adminKey === undefined) return listener === 'ops' ? undefined : { status: 404, message: ADMIN_OFF };
  const h = req.headers['x-admin-key'];
  const key = typeof h === 'string' ? h : clientKeyOf(req);
  if (key === undefined || !sameSecret(key, adminKey))
    return {
      status: 401,
      message: 'Admin routes need the admin key (LB_ADMIN_KEY) in x-admin-key or Authorization: Bearer',
    };
  return undefined;
}

/**
 * Why a state-changing request is refused as possibly cross-site, or undefined. A browser page on another site can
 * send a "simple" POST (form or `text/plain`) to 127.0.0.1 without asking; it cannot send `application/json` without a
 * CORS preflight, which lb never grants. So: JSON content type required, and a browser's `Sec-Fetch-Site` other than
 * `same-origin`/`none` or an `Origin` other than the request's own host is refused.
 */
export function crossSiteRefusal(req: IncomingMessage): Refusal | undefined {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none')
    return { status: 403, message: `Cross-site admin request refused (Sec-Fetch-Site: ${site})` };
  const origin = req.headers.origin;
  if (origin !== undefined && !sameHost(origin, req.headers.host))
    return { status: 403, message: 'Cross-origin admin request refused (Origin does not match Host)' };
  const ct = req.headers['content-type'];
  const media = ct === undefined ? '' : ct.split(';')[0].trim().toLowerCase();
  if (media !== 'application/json')
    return {
      status: 415,
      message:
        'Admin POST routes need Content-Type: application/json (a body is optional: send {} or nothing)',
    };
  return undefined;
}

function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined || origin === 'null') return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

/**
 * Operations routes (`/metrics`, `/stats`, the detailed `/health`): open on the operations listener and on an open
 * gateway; on the main port of a keyed gateway, for a gateway key or the admin key only.
 */
export function mayReadOperations(req: IncomingMessage, listener: Listener, policy: AccessPolicy): boolean {
  if (listener === 'ops' || policy.clients === undefined) return true;
  const h = req.headers['x-admin-key'];
  const key = typeof h === 'string' ? h : clientKeyOf(req);
  if (key === undefined) return false;
  if (policy.clients.identify(key) !== undefined) return true;
  return policy.adminKey !== undefined && sameSecret(key, policy.adminKey);
}

/** Constant-time comparison of two secrets. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
