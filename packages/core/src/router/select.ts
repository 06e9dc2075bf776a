/**
 * Selection: which endpoint serves a request now. The strategy chooses among the route's candidates that are
 * healthy, weighted, not yet tried, carry the request's tags and that every guard admits; a guard's `rescue` may
 * let one through when all are refused; `whyNone` says when one frees up. Allocates nothing while some endpoint is
 * admitted.
 */
import type { Veto } from '../guard.js';
import type { RouteRequest } from '../request.js';
import type { PickContext } from '../strategy.js';
import { refresh } from './health.js';
import { type CandidateImpl, hasAll, type Route } from './route-table.js';
import type { RouterState } from './router-state.js';

export const EMPTY_REQUEST: RouteRequest = Object.freeze({});

/** The clock, read for a pick (see `RouterState.clock`). */
export function tick(s: RouterState): number {
  const t = s.now();
  if (t !== s.clock) s.clock = t;
  return s.clock as number;
}

/** Puts every admissible candidate into `s.scratch`; returns how many. */
function fill(
  s: RouterState,
  route: Route,
  req: RouteRequest,
  tried: number[] | undefined,
  now: number,
): number {
  const cands = route.candidates;
  const scratch = s.scratch;
  const guards = s.guards;
  const tags = req.tags;
  const pin = req.endpoint;
  let n = 0;
  for (let i = 0; i < cands.length; i++) {
    const c = cands[i];
    if (c.weight <= 0 || (pin !== undefined && c.endpoint.id !== pin)) continue;
    const rt = c.rt;
    if (rt.health.status !== 'healthy' && !refresh(s, rt, now)) continue;
    if (tried !== undefined && tried.includes(rt.index)) continue;
    if (tags !== undefined && tags.length && !hasAll(c.tags, tags)) continue;
    let ok = true;
    for (let g = 0; g < guards.length; g++) {
      if (guards[g].admit(c.endpoint, req, now) !== true) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    scratch[n++] = c;
  }
  if (scratch.length !== n) scratch.length = n;
  return n;
}

/** The candidate is still healthy, weighted and admitted by every guard. */
export function admits(s: RouterState, c: CandidateImpl, req: RouteRequest, now: number): boolean {
  if (c.weight <= 0 || (c.rt.health.status !== 'healthy' && !refresh(s, c.rt, now))) return false;
  for (const g of s.guards) if (g.admit(c.endpoint, req, now) !== true) return false;
  return true;
}

/** The route's eligible list (healthy, enabled, weighted), rebuilt only when health changed or a cooldown ended. */
function eligible(s: RouterState, route: Route, now: number): readonly CandidateImpl[] {
  if (route.eligibleVersion === s.healthVersion && now < route.validUntil) return route.eligible;
  const list: CandidateImpl[] = [];
  let validUntil = Infinity;
  for (const c of route.candidates) {
    if (c.weight <= 0) continue;
    const rt = c.rt;
    if (rt.health.status !== 'healthy' && !refresh(s, rt, now)) {
      const h = rt.health;
      if (h.status !== 'disabled' && h.until < validUntil) validUntil = h.until;
      continue;
    }
    list.push(c);
  }
  route.eligible = list;
  route.eligibleVersion = s.healthVersion;
  route.validUntil = validUntil;
  return list;
}

/** The candidate for attempt `attempt` of `req`, not among `tried` unless nothing else is left. */
export function choose(
  s: RouterState,
  route: Route,
  req: RouteRequest,
  tried: number[] | undefined,
  attempt: number,
  now: number,
): CandidateImpl | undefined {
  const ctx = s.ctx;
  ctx.model = route.model;
  ctx.requestId = req.requestId;
  ctx.attempt = attempt;
  // Fast path: no exclusions and no tags: the strategy chooses from the cached eligible list, and guards are
  // asked about the chosen endpoint only. A veto falls back to the full filter below.
  if (
    (tried === undefined || tried.length === 0) &&
    (req.tags === undefined || req.tags.length === 0) &&
    req.endpoint === undefined
  ) {
    const list = eligible(s, route, now);
    if (list.length === 0) return undefined;
    ctx.stable = true;
    const c = (route.strategy.pick(list, ctx as PickContext) as CandidateImpl | undefined) ?? list[0];
    ctx.stable = false;
    const guards = s.guards;
    let ok = true;
    for (let g = 0; g < guards.length; g++) {
      if (guards[g].admit(c.endpoint, req, now) !== true) {
        ok = false;
        break;
      }
    }
    if (ok) return c;
  }
  let n = fill(s, route, req, tried, now);
  if (n === 0 && tried !== undefined && tried.length) n = fill(s, route, req, undefined, now);
  if (n === 0) return s.rescuers === 0 ? undefined : rescue(s, route, req, now);
  const picked =
    (route.strategy.pick(s.scratch, ctx as PickContext) as CandidateImpl | undefined) ?? s.scratch[0];
  s.scratch.length = 0;
  return picked;
}

/** Every candidate was refused: a guard with `rescue` may let one through that every other guard admits. */
function rescue(s: RouterState, route: Route, req: RouteRequest, now: number): CandidateImpl | undefined {
  const tags = req.tags;
  const pin = req.endpoint;
  const list = eligible(s, route, now).filter(
    (c) =>
      (tags === undefined || tags.length === 0 || hasAll(c.tags, tags)) &&
      (pin === undefined || c.endpoint.id === pin),
  );
  if (list.length === 0) return undefined;
  const endpoints = list.map((c) => c.endpoint);
  for (const g of s.guards) {
    const ep = g.rescue?.(endpoints, req, now);
    const c = ep === undefined ? undefined : list.find((x) => x.endpoint === ep);
    if (c !== undefined && s.guards.every((o) => o === g || o.admit(ep!, req, now) === true)) return c;
  }
  return undefined;
}

/** Why no candidate is available now: the earliest time one frees up, and a description. */
export function whyNone(
  s: RouterState,
  route: Route,
  req: RouteRequest,
  now: number,
): { until: number | undefined; reason: string; rateLimited: boolean } {
  let earliest: number | undefined;
  let allRateLimited = true;
  const parts: string[] = [];
  for (const c of route.candidates) {
    const rt = c.rt;
    const h = rt.health;
    let until: number | undefined;
    let why: string | undefined;
    let rl = false;
    if (c.weight <= 0) why = 'weight 0 (draining)';
    else if (h.status === 'disabled') why = h.reason;
    else if (h.status !== 'healthy' && h.until > now) {
      until = h.until;
      why = h.reason;
      rl = h.status === 'cooling';
    } else if (req.tags?.length && !hasAll(c.tags, req.tags)) why = 'tags do not match';
    else {
      for (const g of s.guards) {
        const v = g.admit(c.endpoint, req, now);
        if (v !== true) {
          why = `${g.name}: ${(v as Veto).reason}`;
          until = (v as Veto).until;
          rl = (v as Veto).rateLimited === true;
          break;
        }
      }
    }
    if (why === undefined) {
      allRateLimited = false;
      continue;
    }
    if (!rl) allRateLimited = false;
    if (until !== undefined && (earliest === undefined || until < earliest)) earliest = until;
    parts.push(`${c.endpoint.id}: ${why}`);
  }
  return { until: earliest, reason: parts.join('; '), rateLimited: allRateLimited && parts.length > 0 };
}
