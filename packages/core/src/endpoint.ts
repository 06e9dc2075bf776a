import { ConfigError } from './errors.js';
import { maskKey } from './mask.js';

/** One upstream as users configure it: a base URL, a key, and how to route to it. */
export interface EndpointConfig {
  /** Stable identity, carried across reloads (state and statistics follow it). Default: `name`, else `endpoint-N`. */
  id?: string;
  /** Display name. Default: the id. */
  name?: string;
  /** Base URL, e.g. `https://api.openai.com/v1`. Required. */
  url: string;
  /** The key sent upstream. Never printed: every description masks it. */
  apiKey?: string;
  /** 1 is the highest priority. Lower priorities get traffic only while every better endpoint is unavailable. Default 1. */
  priority?: number;
  /** Relative share within a priority group. 0 drains the endpoint (no new requests). Default 1. */
  weight?: number;
  /** Exposed model names this endpoint serves. Omitted or empty: every model. Keys of `modelMap` count as served. */
  models?: readonly string[];
  /** Exposed name → upstream name, e.g. `{ 'gpt-4o': 'gpt-4o-2024-08-06' }`. */
  modelMap?: Readonly<Record<string, string>>;
  /** Free labels; a request may ask for endpoints that carry all of its tags. */
  tags?: readonly string[];
  /** Per-attempt timeout in ms for this endpoint. Default: the router's `timeoutMs`. */
  timeoutMs?: number;
  /** Disabled endpoints get no traffic until enabled. Default true. */
  enabled?: boolean;
  /** Provider dialect (`openai`, `azure`, `anthropic`, or your own). Default `openai`. */
  provider?: string;
  /** Extra headers sent upstream with every request. */
  headers?: Readonly<Record<string, string>>;
  /** Path probed by active health checks, relative to `url`. Default `/models`. */
  healthCheck?: string;
  /** Rate limits, read by `@lb/ratelimit`. */
  limits?: { rps?: number; rpm?: number; tpm?: number; burst?: number };
  /** Free-form settings for other packages (a provider's API version, Azure deployments…). */
  meta?: Readonly<Record<string, unknown>>;
}

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/**
 * Where an endpoint keeps its slots, and the allocator of slot numbers: both registered symbols on purpose, so that
 * the CommonJS and ESM copies of this package (an app that `require`s one package and `import`s another) share them.
 */
const SLOTS = Symbol.for('@lb/core:endpoint-slots');
const ALLOCATOR = Symbol.for('@lb/core:endpoint-slot-allocator');
const allocator: { count: number; free: number[] } = ((globalThis as Record<symbol, unknown>)[ALLOCATOR] ??= {
  count: 0,
  free: [],
}) as { count: number; free: number[] };

/**
 * A place on every endpoint for one package's own state about it (a guard's buckets, a circuit): `get` is two array
 * reads on the endpoint, where a `WeakMap` keyed by endpoint costs a hash lookup on every pick. The value is never
 * shown, serialised or copied; the endpoints a reload makes start empty. `release` frees the slot (on dispose): a
 * slot made later may reuse its place, and never sees the values set through this one.
 *
 * @example
 * const slot = new EndpointSlot<MyState>();
 * admit(endpoint) { const s = slot.get(endpoint) ?? init(endpoint); ... }
 */
export class EndpointSlot<T> {
  /** Where this slot's pair (owner, value) starts in an endpoint's slot array; -1 after `release`. */
  #at: number;

  /** For endpoints without slots (made by an older copy of this package). */
  #other: WeakMap<Endpoint, T> | undefined;

  constructor() {
    const free = allocator.free;
    free.sort((a, b) => b - a);
    this.#at = 2 * (free.length ? (free.pop() as number) : allocator.count++);
  }

  /** This slot's value on `endpoint`, if set. */
  get(endpoint: Endpoint): T | undefined {
    const slots = (endpoint as unknown as Record<symbol, unknown[] | undefined>)[SLOTS];
    if (slots === undefined) return this.#other?.get(endpoint);
    const at = this.#at;
    // The owner check hides what an earlier, released slot left at the same place.
    return slots[at] === this ? (slots[at + 1] as T) : undefined;
  }

  /** Sets this slot's value on `endpoint` (nothing once released). */
  set(endpoint: Endpoint, value: T | undefined): void {
    const at = this.#at;
    if (at < 0) return;
    const slots = (endpoint as unknown as Record<symbol, unknown[] | undefined>)[SLOTS];
    if (slots === undefined) {
      (this.#other ??= new WeakMap()).set(endpoint, value as T);
      return;
    }
    // Filled in order, so that the array stays packed (fast elements) rather than holey.
    while (slots.length < at) slots.push(undefined);
    slots[at] = this;
    slots[at + 1] = value;
  }

  /** Frees the slot for reuse: from now on `get` answers undefined and `set` does nothing. */
  release(): void {
    if (this.#at < 0) return;
    allocator.free.push(this.#at / 2);
    this.#at = -1;
    this.#other = undefined;
  }
}

/**
 * An immutable, validated endpoint. The key lives in a private field: spreading, `JSON.stringify`,
 * `String()` and `util.inspect` all show the masked form only.
 */
export class Endpoint {
  readonly id: string;
  readonly name: string;
  readonly url: string;
  readonly priority: number;
  readonly weight: number;
  readonly models: readonly string[];
  readonly modelMap: Readonly<Record<string, string>>;
  readonly tags: readonly string[];
  readonly timeoutMs: number | undefined;
  readonly enabled: boolean;
  readonly provider: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly healthCheck: string;
  readonly limits: Readonly<{ rps?: number; rpm?: number; tpm?: number; burst?: number }>;
  readonly meta: Readonly<Record<string, unknown>>;
  /** The key, masked for display (`sk-proj...N0IA`). */
  readonly maskedKey: string;
  readonly #apiKey: string | undefined;
  readonly #served: ReadonlySet<string> | undefined;

  constructor(config: EndpointConfig, index = 0) {
    const where = `endpoints[${index}]`;
    if (!config || typeof config !== 'object')
      throw new ConfigError(`${where}: expected an object, received ${typeof config}`);
    if (typeof config.url !== 'string' || !isHttpUrl(config.url)) {
      throw new ConfigError(`${where}.url: not an http(s) URL: ${JSON.stringify(String(config.url))}`);
    }
    this.id = String(config.id ?? config.name ?? `endpoint-${index + 1}`);
    this.name = String(config.name ?? this.id);
    this.url = config.url.replace(/\/+$/, '');
    this.#apiKey = config.apiKey || undefined;
    this.maskedKey = maskKey(config.apiKey);
    this.priority = checkNumber(config.priority ?? 1, `${where}.priority`, 0);
    this.weight = checkNumber(config.weight ?? 1, `${where}.weight`, 0);
    this.modelMap = Object.freeze({ ...(config.modelMap ?? {}) });
    const models = [...(config.models ?? [])];
    for (const k of Object.keys(this.modelMap)) if (models.length && !models.includes(k)) models.push(k);
    this.models = Object.freeze(models);
    this.#served = models.length ? new Set(models) : undefined;
    this.tags = Object.freeze([...(config.tags ?? [])]);
    this.timeoutMs =
      config.timeoutMs === undefined ? undefined : checkNumber(config.timeoutMs, `${where}.timeoutMs`, 1);
    this.enabled = config.enabled ?? true;
    this.provider = config.provider ?? 'openai';
    this.headers = Object.freeze({ ...(config.headers ?? {}) });
    this.healthCheck = config.healthCheck ?? '/models';
    this.limits = Object.freeze({ ...(config.limits ?? {}) });
    this.meta = Object.freeze({ ...(config.meta ?? {}) });
    // Not enumerable: out of spreads, `Object.keys` and `JSON.stringify` (`inspect` shows the masked form only).
    Object.defineProperty(this, SLOTS, { value: [] });
  }

  /** The key to send upstream. Read it only to build the upstream request. */
  get apiKey(): string | undefined {
    return this.#apiKey;
  }

  /** Whether this endpoint serves the exposed model name (true when it lists no models). */
  serves(model: string | undefined): boolean {
    return !this.#served || model === undefined || this.#served.has(model);
  }

  /** The upstream model name for an exposed one. */
  upstreamModel(model: string): string {
    return this.modelMap[model] ?? model;
  }

  /** True when `other` describes the same upstream with the same settings (used by reloads). */
  sameAs(other: Endpoint): boolean {
    return (
      this.id === other.id &&
      this.url === other.url &&
      this.#apiKey === other.apiKey &&
      this.priority === other.priority &&
      this.weight === other.weight &&
      this.enabled === other.enabled &&
      this.timeoutMs === other.timeoutMs &&
      this.provider === other.provider &&
      JSON.stringify([
        this.models,
        this.modelMap,
        this.tags,
        this.headers,
        this.limits,
        this.meta,
        this.healthCheck,
      ]) ===
        JSON.stringify([
          other.models,
          other.modelMap,
          other.tags,
          other.headers,
          other.limits,
          other.meta,
          other.healthCheck,
        ])
    );
  }

  /** A plain description, key masked. */
  toJSON(): Record<string, unknown> {
    return {
      id: this.id,
      name: this.name,
      url: this.url,
      apiKey: this.maskedKey,
      provider: this.provider,
      priority: this.priority,
      weight: this.weight,
      enabled: this.enabled,
      models: this.models,
      modelMap: this.modelMap,
      tags: this.tags,
      timeoutMs: this.timeoutMs,
    };
  }

  toString(): string {
    return `Endpoint(${this.id} ${this.url} key=${this.maskedKey || 'none'} priority=${this.priority} weight=${this.weight})`;
  }

  [INSPECT](): string {
    return this.toString();
  }
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function checkNumber(v: unknown, where: string, min: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    throw new ConfigError(`${where}: expected a number >= ${min}, received ${JSON.stringify(v)}`);
  }
  return v;
}
