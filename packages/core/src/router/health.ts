/**
 * Endpoint health: the one setter of an endpoint's `EndpointHealth` (healthy, cooling, unhealthy, disabled), which
 * bumps the health version the selection caches on and emits `endpoint:state`; cooldowns and retirements that end
 * by themselves; and the overrides by hand or by a health probe.
 */
import { type EndpointHealth, HEALTHY } from '../state.js';
import { ROUTER_DEFAULTS } from './config.js';
import { setProbation } from './probation.js';
import type { Runtime } from './route-table.js';
import type { RouterState } from './router-state.js';

/** Brings `rt` back when its cooldown or retirement is over at `now`; true when it is healthy. */
export function refresh(s: RouterState, rt: Runtime, now: number): boolean {
  const h = rt.health;
  if (h.status === 'healthy') return true;
  if (h.status === 'disabled') return false;
  if (h.until <= now) {
    setHealth(s, rt, HEALTHY, h.status === 'cooling' ? 'cooldown over' : 'retirement over');
    return true;
  }
  return false;
}

/** The one place an endpoint's health changes. */
export function setHealth(s: RouterState, rt: Runtime, next: EndpointHealth, reason?: string): void {
  const from = rt.health.status;
  rt.health = next;
  s.healthVersion++;
  if (s.bus.has('endpoint:state')) {
    s.bus.emit('endpoint:state', {
      endpointId: rt.endpoint.id,
      endpoint: rt.endpoint,
      from,
      to: next.status,
      reason: reason ?? ('reason' in next ? next.reason : 'healthy'),
      until: 'until' in next ? next.until : undefined,
    });
  }
}

/** See `Router.setEndpointHealth`. */
export function setEndpointHealth(s: RouterState, id: string, healthy: boolean, reason?: string): boolean {
  const rt = s.pool.byId.get(id);
  if (!rt) return false;
  const why = reason ?? (healthy ? 'enabled by hand' : 'disabled by hand');
  if (healthy) {
    rt.rateLimitStreak = 0;
    setProbation(s, rt, 0, undefined);
    if (rt.health.status !== 'healthy') setHealth(s, rt, HEALTHY, why);
  } else {
    setHealth(s, rt, { status: 'disabled', reason: why });
  }
  if (s.bus.has('endpoint:override')) {
    s.bus.emit('endpoint:override', { endpointId: id, endpoint: rt.endpoint, healthy, reason: why });
  }
  return true;
}

/** See `Router.recover`. */
export function recover(s: RouterState, id: string, reason: string): boolean {
  const rt = s.pool.byId.get(id);
  if (!rt || rt.health.status === 'healthy' || rt.health.status === 'disabled') return false;
  setHealth(s, rt, HEALTHY, reason);
  return true;
}

/** See `Router.markUnhealthy`. */
export function markUnhealthy(
  s: RouterState,
  id: string,
  reason: string,
  forMs: number | undefined,
): boolean {
  const rt = s.pool.byId.get(id);
  if (!rt || rt.health.status === 'disabled') return false;
  const ms = forMs === undefined ? (s.config.keyRetireMs ?? ROUTER_DEFAULTS.keyRetireMs) : forMs;
  setHealth(s, rt, { status: 'unhealthy', until: s.now() + ms, reason });
  return true;
}
