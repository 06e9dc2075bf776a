import type { EndpointSnapshot } from '@lb/core';
import type { BreakerStateName } from './types.js';

type Rec = Record<string, unknown>;

const isRec = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads a per-endpoint snapshot of an attached handle (breaker, limiter, health checks) whatever its shape: an array
 * of `{ id | endpointId, ... }`, a `Map`, a record keyed by endpoint id, or any of those under `endpoints`.
 * Structural on purpose: the server does not depend on those packages' build.
 */
export function perEndpoint(snapshot: unknown): Map<string, Rec> {
  const out = new Map<string, Rec>();
  if (snapshot === null || snapshot === undefined) return out;
  if (snapshot instanceof Map) {
    for (const [k, v] of snapshot) if (typeof k === 'string') out.set(k, isRec(v) ? v : { state: v });
    return out;
  }
  if (Array.isArray(snapshot)) {
    for (const v of snapshot) {
      if (!isRec(v)) continue;
      const id = v.endpointId ?? v.id ?? v.endpoint;
      if (typeof id === 'string') out.set(id, v);
    }
    return out;
  }
  if (isRec(snapshot)) {
    if ('endpoints' in snapshot) return perEndpoint(snapshot.endpoints);
    for (const k of Object.keys(snapshot)) {
      const v = snapshot[k];
      out.set(k, isRec(v) ? v : { state: v });
    }
  }
  return out;
}

/** Normalises a breaker state (`halfOpen`, `half_open`, `HalfOpen`, cockatiel's numeric 0/1/2/3…). */
export function breakerState(v: unknown): BreakerStateName | undefined {
  if (isRec(v)) return breakerState(v.state ?? v.status ?? v.value);
  if (typeof v === 'number') return (['closed', 'open', 'half-open', 'isolated'] as const)[v];
  if (typeof v !== 'string') return undefined;
  const s = v.toLowerCase().replace(/[\s_-]/g, '');
  if (s === 'closed') return 'closed';
  if (s === 'open') return 'open';
  if (s === 'halfopen') return 'half-open';
  if (s === 'isolated') return 'isolated';
  return undefined;
}

/** Gauge value of a breaker state: 0 closed, 1 half-open, 2 open (isolated counts as open). */
export function breakerValue(s: BreakerStateName): number {
  return s === 'closed' ? 0 : s === 'half-open' ? 1 : 2;
}

/** The breaker state of one endpoint: from the handle when attached, else from a breaker guard's `describe()`. */
export function breakerOf(
  ep: EndpointSnapshot,
  fromHandle: Map<string, Rec> | undefined,
): BreakerStateName | undefined {
  const h = fromHandle?.get(ep.id);
  if (h) return breakerState(h);
  for (const name in ep.guards) if (/breaker|circuit/i.test(name)) return breakerState(ep.guards[name]);
  return undefined;
}

/**
 * Remaining budgets in a limiter's per-endpoint record: `{ rpsRemaining: 3 }`, `{ remaining: { rpm: 40 } }` or
 * `{ rpm: { remaining: 40 } }` all give `{ rps: 3 }` / `{ rpm: 40 }`; one nested level is prefixed
 * (`upstream: { remainingTokens: 9 }` → `{ upstream_tokens: 9 }`).
 */
export function remainingOf(rec: Rec | undefined): Record<string, number> | undefined {
  if (!rec) return undefined;
  let out: Record<string, number> | undefined;
  const put = (k: string, v: unknown) => {
    if (typeof v === 'number' && Number.isFinite(v)) (out ??= {})[k] = v;
  };
  const walk = (r: Rec, prefix: string, depth: number) => {
    for (const k of Object.keys(r)) {
      const v = r[k];
      if (k === 'remaining' && isRec(v)) for (const l of Object.keys(v)) put(prefix + l, v[l]);
      else if (typeof v === 'number' && /remaining/i.test(k)) {
        const label = k.replace(/_?remaining_?/i, '') || 'requests';
        put(prefix + label.toLowerCase(), v);
      } else if (isRec(v)) {
        if ('remaining' in v) put(prefix + k, v.remaining);
        // The upstream's own view (`upstream: { remainingRequests, remainingTokens }`) → `upstream_requests`…
        else if (depth === 0) walk(v, `${k}_`, 1);
      }
    }
  };
  walk(rec, '', 0);
  return out;
}

/** The rate-limit budgets of one endpoint: from the handle when attached, else from a limiter guard's `describe()`. */
export function rateLimitOf(
  ep: EndpointSnapshot,
  fromHandle: Map<string, Rec> | undefined,
): Record<string, number> | undefined {
  const h = fromHandle?.get(ep.id);
  if (h) return remainingOf(h);
  for (const name in ep.guards) if (/rate|limit/i.test(name)) return remainingOf(ep.guards[name]);
  return undefined;
}

/** A health probe's last result: `{ ok, status, responseTime, lastCheckAt }` in any of the usual spellings. */
export function probeOf(rec: Rec | undefined):
  | {
      ok: boolean | undefined;
      status: number | undefined;
      responseTimeMs: number | undefined;
      at: string | undefined;
    }
  | undefined {
  if (!rec) return undefined;
  const num = (...vs: unknown[]) => {
    for (const v of vs) if (typeof v === 'number' && Number.isFinite(v)) return v;
    return undefined;
  };
  const at = rec.lastCheckAt ?? rec.checkedAt ?? rec.at;
  return {
    ok: typeof rec.ok === 'boolean' ? rec.ok : typeof rec.healthy === 'boolean' ? rec.healthy : undefined,
    status: num(rec.status),
    responseTimeMs: num(rec.responseTime, rec.responseTimeMs, rec.latencyMs),
    at:
      typeof at === 'number' && at > 0 ? new Date(at).toISOString() : typeof at === 'string' ? at : undefined,
  };
}

/** Calls a handle's `snapshot()`, never letting it break a health page. */
export function safeSnapshot(h: { snapshot(): unknown } | undefined): Map<string, Rec> | undefined {
  if (!h) return undefined;
  try {
    return perEndpoint(h.snapshot());
  } catch {
    return undefined;
  }
}

/** Whether a limiter's per-endpoint record says the endpoint is held back now. */
export function rateLimited(rec: Rec | undefined, now: number): boolean {
  if (!rec) return false;
  if (rec.available === false) return true;
  const until = rec.cooldownUntil;
  return typeof until === 'number' && until > now;
}
