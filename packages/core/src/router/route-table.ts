/**
 * The route table: the endpoint pool a config builds (each endpoint's runtime state, carried across reloads by id)
 * and, per requested model, the route — its candidates in priority order, its strategy, and the cached list of
 * candidates healthy enough to choose from.
 */
import { Endpoint } from '../endpoint.js';
import { ConfigError } from '../errors.js';
import { type EndpointHealth, type EndpointStats, HEALTHY, newStats } from '../state.js';
import { resolveStrategy } from '../strategies/builtin.js';
import type { Candidate, Strategy, StrategyFactory, StrategyOptions } from '../strategy.js';
import type { ModelGroupConfig, RouterConfig } from './config.js';

/** One endpoint's live state in the router; the same object survives reloads that keep the endpoint's id. */
export interface Runtime {
  endpoint: Endpoint;
  index: number;
  stats: EndpointStats;
  health: EndpointHealth;
  rateLimitStreak: number;
  /**
   * `performance.now()` when a stream of this endpoint last broke after its first byte; 0 once a stream started
   * after that has ended cleanly (or never broke). Non-zero: the endpoint is on stream probation.
   */
  streamBrokeAt: number;
}

export interface CandidateImpl extends Candidate {
  readonly rt: Runtime;
  readonly tags: readonly string[];
}

export interface Route {
  readonly model: string | undefined;
  readonly candidates: readonly CandidateImpl[];
  readonly strategy: Strategy;
  /** Candidates that are enabled, healthy and weighted, before guards: rebuilt only when health changes. */
  eligible: readonly CandidateImpl[];
  /** The router's health version `eligible` was built at (-1: never). */
  eligibleVersion: number;
  /** Epoch ms when a cooling endpoint of this route comes back (Infinity: none). */
  validUntil: number;
}

export interface Pool {
  readonly runtimes: readonly Runtime[];
  readonly byId: ReadonlyMap<string, Runtime>;
  readonly groups: ReadonlyMap<string, ModelGroupConfig>;
  readonly routes: Map<string, Route>;
  defaultRoute: Route | undefined;
}

/** A pool built from a config, not yet committed: `fresh[i]` is the new `Endpoint` for `runtimes[i]`. */
export interface PoolDraft {
  readonly pool: Pool;
  readonly fresh: readonly Endpoint[];
  readonly added: string[];
  readonly removed: string[];
  readonly changed: string[];
}

const MAX_ROUTES = 4096;
export const EMPTY_LIST: readonly CandidateImpl[] = Object.freeze([]);

/**
 * Builds the pool of `config`, reusing the runtimes of `old` by endpoint id. Throws a ConfigError (changing nothing)
 * when an id repeats or a model group names an unknown endpoint. The runtimes' endpoints are swapped on commit.
 */
export function draftPool(config: RouterConfig, old: Pool | undefined): PoolDraft {
  const runtimes: Runtime[] = [];
  const byId = new Map<string, Runtime>();
  const added: string[] = [];
  const changed: string[] = [];
  const fresh: Endpoint[] = [];
  config.endpoints.forEach((ec, i) => {
    const ep = new Endpoint(ec, i);
    fresh.push(ep);
    if (byId.has(ep.id)) throw new ConfigError(`endpoints[${i}].id: duplicate id ${JSON.stringify(ep.id)}`);
    const prev = old?.byId.get(ep.id);
    let rt: Runtime;
    if (prev) {
      if (!prev.endpoint.sameAs(ep)) changed.push(ep.id);
      rt = prev;
    } else {
      added.push(ep.id);
      rt = {
        endpoint: ep,
        index: i,
        stats: newStats(),
        health: HEALTHY,
        rateLimitStreak: 0,
        streamBrokeAt: 0,
      };
    }
    runtimes.push(rt);
    byId.set(ep.id, rt);
  });
  const groups = new Map<string, ModelGroupConfig>();
  for (const [name, g] of Object.entries(config.models ?? {})) {
    if (!g || !Array.isArray(g.backends) || g.backends.length === 0) {
      throw new ConfigError(`models.${name}.backends: expected a non-empty array`);
    }
    g.backends.forEach((b, j) => {
      if (!byId.has(b.endpoint)) {
        throw new ConfigError(
          `models.${name}.backends[${j}].endpoint: unknown endpoint ${JSON.stringify(b.endpoint)}; known: ${[...byId.keys()].join(', ')}`,
        );
      }
    });
    if (g.strategy !== undefined) resolveStrategy(g.strategy);
    groups.set(name, g);
  }
  const removed = old ? [...old.byId.keys()].filter((id) => !byId.has(id)) : [];
  return {
    pool: { runtimes, byId, groups, routes: new Map(), defaultRoute: undefined },
    fresh,
    added,
    removed,
    changed,
  };
}

/** What a route is built with: the router's default strategy and the options every strategy gets. */
export interface RouteDefaults {
  readonly factory: StrategyFactory;
  readonly random: () => number;
  readonly strategyOptions: Partial<Omit<StrategyOptions, 'random'>> | undefined;
}

/** The route of `model` (undefined: the default route), built on first use and cached in the pool. */
export function routeFor(pool: Pool, model: string | undefined, defaults: RouteDefaults): Route {
  if (model === undefined) {
    if (!pool.defaultRoute) pool.defaultRoute = buildRoute(pool, undefined, defaults);
    return pool.defaultRoute;
  }
  let r = pool.routes.get(model);
  if (!r) {
    if (pool.routes.size >= MAX_ROUTES) pool.routes.clear();
    r = buildRoute(pool, model, defaults);
    pool.routes.set(model, r);
  }
  return r;
}

function buildRoute(pool: Pool, model: string | undefined, defaults: RouteDefaults): Route {
  const group = model === undefined ? undefined : pool.groups.get(model);
  const list: CandidateImpl[] = [];
  if (group) {
    for (const b of group.backends) {
      const rt = pool.byId.get(b.endpoint)!;
      const ep = rt.endpoint;
      list.push({
        endpoint: ep,
        index: rt.index,
        rt,
        stats: rt.stats,
        weight: b.weight ?? ep.weight,
        priority: b.priority ?? ep.priority,
        upstreamModel: b.model ?? ep.upstreamModel(model!),
        tags: b.tags ? [...ep.tags, ...b.tags] : ep.tags,
      });
    }
  } else {
    for (const rt of pool.runtimes) {
      const ep = rt.endpoint;
      if (!ep.serves(model)) continue;
      list.push({
        endpoint: ep,
        index: rt.index,
        rt,
        stats: rt.stats,
        weight: ep.weight,
        priority: ep.priority,
        upstreamModel: model === undefined ? undefined : ep.upstreamModel(model),
        tags: ep.tags,
      });
    }
  }
  list.sort((a, b) => a.priority - b.priority || a.index - b.index);
  const factory = group?.strategy !== undefined ? resolveStrategy(group.strategy) : defaults.factory;
  return {
    model,
    candidates: list,
    strategy: factory({ random: defaults.random, ...defaults.strategyOptions }),
    eligible: EMPTY_LIST,
    eligibleVersion: -1,
    validUntil: 0,
  };
}

/** True when `have` carries every tag of `want`. */
export function hasAll(have: readonly string[], want: readonly string[]): boolean {
  for (let i = 0; i < want.length; i++) if (!have.includes(want[i])) return false;
  return true;
}
