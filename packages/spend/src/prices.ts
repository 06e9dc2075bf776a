import { ConfigError } from '@lb/core';
import { EndpointSlot } from '@lb/core/internal';
import { DEFAULT_PRICES, PRICES_DATE } from './prices-data.js';

/**
 * A model's price as configured: USD per 1M tokens, or per unit. Every field is optional; a missing `cachedInput`
 * or `cacheWrite` costs what `input` costs, a missing `output` costs nothing (embeddings).
 */
export interface PriceInput {
  /** USD per 1M input (prompt) tokens. */
  input?: number;
  /** USD per 1M cached input tokens (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`). Default `input`. */
  cachedInput?: number;
  /** USD per 1M tokens written to Anthropic's prompt cache (`cache_creation_input_tokens`). Default `input`. */
  cacheWrite?: number;
  /** USD per 1M output (completion) tokens. Default 0. */
  output?: number;
  /** USD per image generated (standard size and quality). */
  image?: number;
  /** USD per minute of audio transcribed or translated. */
  audioMinute?: number;
  /** USD per 1M characters of speech generated. */
  characters?: number;
}

/** A validated price: every token price set (defaults applied), unit prices when the model has them. */
export interface Price {
  readonly input: number;
  readonly cachedInput: number;
  readonly cacheWrite: number;
  readonly output: number;
  readonly image: number | undefined;
  readonly audioMinute: number | undefined;
  readonly characters: number | undefined;
}

/**
 * The usage a provider returned, in any of the shapes lb meets: OpenAI chat and embeddings (`prompt_tokens`,
 * `completion_tokens`, `prompt_tokens_details.cached_tokens`), OpenAI's Responses API (`input_tokens`,
 * `output_tokens`, `input_tokens_details.cached_tokens`) and Anthropic's Messages API (`input_tokens`,
 * `output_tokens`, `cache_read_input_tokens`, `cache_creation_input_tokens`).
 */
export interface UsageLike {
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  total_tokens?: number | null;
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
  input_tokens?: number | null;
  output_tokens?: number | null;
  input_tokens_details?: { cached_tokens?: number | null } | null;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}

/** Units a request used that are priced per unit rather than per token. */
export interface UnitUsage {
  /** Images generated. */
  images?: number;
  /** Seconds of audio transcribed or translated. */
  audioSeconds?: number;
  /** Characters of speech generated. */
  characters?: number;
}

/** Anything that may carry a per-endpoint price: an `@lb/core` `Endpoint` (its `meta.price`) or a plain object. */
export interface PricedEndpoint {
  readonly id?: string;
  readonly meta?: Readonly<Record<string, unknown>>;
}

/** Options of {@link PriceTable}. */
export interface PriceTableOptions {
  /**
   * Prices by model name, over the shipped ones (config `[prices."model"]`). A model listed here replaces the shipped
   * entry whole (unset fields take their defaults, not the shipped values).
   */
  prices?: Readonly<Record<string, PriceInput>>;
  /** Start from the shipped table ({@link DEFAULT_PRICES}). Default true. */
  defaults?: boolean;
  /**
   * Called once per model name that has no price (its cost is `undefined`, never 0): log it. Not called again for
   * that name while the table lives.
   */
  onUnknown?: (model: string) => void;
}

const M = 1e-6;
/** Resolved names kept (hits and misses alike); past it, a lookup still works, uncached. */
const CACHE_MAX = 4096;
const MISS = null;

/** `-2024-07-18`, `-20241022`, `-latest`, `-preview`: what a snapshot adds to its base name. */
const SUFFIX = /(-\d{4}-\d{2}-\d{2}|-\d{8}|-latest|-preview)$/;

function check(v: unknown, where: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ConfigError(`${where}: expected a number >= 0 (USD), received ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Validates a {@link PriceInput} into a {@link Price}; throws a `ConfigError` naming `where` and the value.
 *
 * @example
 * toPrice({ input: 0.15, output: 0.6 }, 'prices.gpt-4o-mini'); // { input: 0.15, cachedInput: 0.15, … }
 */
export function toPrice(p: PriceInput, where = 'price'): Price {
  if (!p || typeof p !== 'object' || Array.isArray(p)) {
    throw new ConfigError(`${where}: expected a table like { input, output }, received ${JSON.stringify(p)}`);
  }
  for (const k of Object.keys(p)) {
    if (!KNOWN.has(k))
      throw new ConfigError(`${where}.${k}: unknown price field; known: ${[...KNOWN].join(', ')}`);
  }
  const input = check(p.input, `${where}.input`) ?? 0;
  return Object.freeze({
    input,
    cachedInput: check(p.cachedInput, `${where}.cachedInput`) ?? input,
    cacheWrite: check(p.cacheWrite, `${where}.cacheWrite`) ?? input,
    output: check(p.output, `${where}.output`) ?? 0,
    image: check(p.image, `${where}.image`),
    audioMinute: check(p.audioMinute, `${where}.audioMinute`),
    characters: check(p.characters, `${where}.characters`),
  });
}

const KNOWN = new Set(['input', 'cachedInput', 'cacheWrite', 'output', 'image', 'audioMinute', 'characters']);

/**
 * USD for `usage` at `price`, from whichever usage shape the provider sent. Allocates nothing.
 *
 * OpenAI's `prompt_tokens` / `input_tokens` include the cached ones; Anthropic's `input_tokens` exclude cache
 * reads and writes (told apart by Anthropic's `cache_*_input_tokens` fields).
 */
export function priceUsage(usage: UsageLike, price: Price): number {
  const cacheRead = usage.cache_read_input_tokens;
  const cacheWrite = usage.cache_creation_input_tokens;
  let input: number;
  let cached: number;
  let written = 0;
  let output: number;
  if (usage.prompt_tokens != null) {
    input = usage.prompt_tokens;
    cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
    output = usage.completion_tokens ?? 0;
    input -= cached;
  } else if (cacheRead != null || cacheWrite != null) {
    // Anthropic: input_tokens are the uncached ones only.
    input = usage.input_tokens ?? 0;
    cached = cacheRead ?? 0;
    written = cacheWrite ?? 0;
    output = usage.output_tokens ?? 0;
  } else {
    input = usage.input_tokens ?? 0;
    cached = usage.input_tokens_details?.cached_tokens ?? 0;
    output = usage.output_tokens ?? usage.completion_tokens ?? 0;
    input -= cached;
  }
  if (input < 0) input = 0;
  return (
    (input * price.input + cached * price.cachedInput + written * price.cacheWrite + output * price.output) *
    M
  );
}

/** Tokens in `usage`, whatever its shape (Anthropic's cache reads and writes included). Allocates nothing. */
export function tokensOf(usage: UsageLike): number {
  if (usage.total_tokens != null) return usage.total_tokens;
  if (usage.prompt_tokens != null) return usage.prompt_tokens + (usage.completion_tokens ?? 0);
  return (
    (usage.input_tokens ?? 0) +
    (usage.output_tokens ?? 0) +
    (usage.cache_read_input_tokens ?? 0) +
    (usage.cache_creation_input_tokens ?? 0)
  );
}

/**
 * Prices per model: the shipped table (dated {@link PRICES_DATE}), config overrides per model, and per-endpoint
 * prices (`endpoint.meta.price`, config `price = { … }` on an endpoint), which win. A model without a price costs
 * `undefined` — never 0 — and `onUnknown` hears of it once.
 *
 * Lookups are one map read once a name has been seen (dated names resolve to their base name once, then stay
 * cached), and the price of an endpoint sits in a slot on the endpoint: `costOf` allocates nothing but its result.
 *
 * @example
 * const prices = new PriceTable({ prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } }, onUnknown: (m) => log.warn(`no price for ${m}`) });
 * prices.costOf({ prompt_tokens: 1000, completion_tokens: 200 }, 'gpt-4o-mini-2024-07-18'); // 0.00027
 */
export class PriceTable {
  /** The date the shipped prices were taken. */
  readonly date = PRICES_DATE;
  readonly #prices = new Map<string, Price>();
  readonly #resolved = new Map<string, Price | null>();
  readonly #unknown = new Set<string>();
  readonly #onUnknown: ((model: string) => void) | undefined;
  readonly #endpointPrice = new EndpointSlot<Price | null>();

  constructor(options: PriceTableOptions = {}) {
    if (options.onUnknown !== undefined && typeof options.onUnknown !== 'function') {
      throw new ConfigError(`PriceTable: onUnknown must be a function, received ${typeof options.onUnknown}`);
    }
    this.#onUnknown = options.onUnknown;
    if (options.defaults !== false) {
      for (const [model, p] of Object.entries(DEFAULT_PRICES)) this.#prices.set(model, toPrice(p, model));
    }
    for (const [model, p] of Object.entries(options.prices ?? {})) {
      this.#prices.set(model, toPrice(p, `prices.${JSON.stringify(model)}`));
    }
  }

  /** Model names with a price of their own (the shipped ones and overrides). */
  models(): string[] {
    return [...this.#prices.keys()];
  }

  /**
   * The price of `model` (at `endpoint`, whose own price wins), or undefined. Unknown names are reported once to
   * `onUnknown`. Allocates nothing once the name has been seen.
   */
  get(model: string | undefined, endpoint?: PricedEndpoint): Price | undefined {
    const p = this.peek(model, endpoint);
    if (p === undefined && model !== undefined) this.#miss(model);
    return p;
  }

  /** Like {@link get}, without telling `onUnknown` (for a strategy that only compares). */
  peek(model: string | undefined, endpoint?: PricedEndpoint): Price | undefined {
    if (endpoint !== undefined) {
      const own = this.endpointPrice(endpoint);
      if (own !== undefined) return own;
    }
    if (model === undefined) return undefined;
    let p = this.#resolved.get(model);
    if (p === undefined) {
      p = this.#resolve(model);
      if (this.#resolved.size < CACHE_MAX) this.#resolved.set(model, p);
    }
    return p ?? undefined;
  }

  /** The endpoint's own price (`meta.price`), validated once and kept in a slot on the endpoint; else undefined. */
  endpointPrice(endpoint: PricedEndpoint): Price | undefined {
    const slot = this.#endpointPrice;
    let p = slot.get(endpoint as never);
    if (p === undefined) {
      const raw = endpoint.meta?.price;
      p = raw === undefined ? null : toPrice(raw as PriceInput, `endpoints.${endpoint.id ?? '?'}.price`);
      slot.set(endpoint as never, p);
    }
    return p ?? undefined;
  }

  /**
   * USD for `usage` of `model` (the upstream model name, as the provider answered or as sent), at `endpoint` when
   * given. `undefined` when the model has no price. Allocates nothing but the result.
   */
  costOf(
    usage: UsageLike | undefined | null,
    model: string | undefined,
    endpoint?: PricedEndpoint,
  ): number | undefined {
    const p = this.get(model, endpoint);
    if (p === undefined) return undefined;
    return usage ? priceUsage(usage, p) : 0;
  }

  /** USD for per-unit usage (images, audio, speech); undefined when the model has no such price. */
  costOfUnits(units: UnitUsage, model: string | undefined, endpoint?: PricedEndpoint): number | undefined {
    const p = this.get(model, endpoint);
    if (p === undefined) return undefined;
    let usd = 0;
    if (units.images) {
      if (p.image === undefined) return undefined;
      usd += units.images * p.image;
    }
    if (units.audioSeconds) {
      if (p.audioMinute === undefined) return undefined;
      usd += (units.audioSeconds / 60) * p.audioMinute;
    }
    if (units.characters) {
      if (p.characters === undefined) return undefined;
      usd += units.characters * p.characters * M;
    }
    return usd;
  }

  /** Forgets endpoint prices read so far (call after a reload changed `meta.price` on kept endpoints). */
  dispose(): void {
    this.#endpointPrice.release();
  }

  #resolve(model: string): Price | null {
    const exact = this.#prices.get(model);
    if (exact !== undefined) return exact;
    // `azure/gpt-4o`, `openai/gpt-4o`: a provider prefix.
    const slash = model.lastIndexOf('/');
    let name = slash >= 0 ? model.slice(slash + 1) : model;
    for (let i = 0; i < 3; i++) {
      const p = this.#prices.get(name);
      if (p !== undefined) return p;
      const base = name.replace(SUFFIX, '');
      if (base === name) break;
      name = base;
    }
    return this.#prices.get(name) ?? MISS;
  }

  #miss(model: string): void {
    if (this.#unknown.has(model) || this.#unknown.size >= CACHE_MAX) return;
    this.#unknown.add(model);
    this.#onUnknown?.(model);
  }
}

let shared: PriceTable | undefined;

/**
 * USD for `usage` of `model` with the shipped prices (and `endpoint.meta.price` when given); `undefined` when the
 * model has no price. For config overrides and the once-per-model report, make a {@link PriceTable}.
 *
 * @example
 * costOf({ prompt_tokens: 1200, completion_tokens: 300, prompt_tokens_details: { cached_tokens: 1024 } }, 'gpt-4o-mini');
 */
export function costOf(
  usage: UsageLike | undefined | null,
  model: string | undefined,
  endpoint?: PricedEndpoint,
): number | undefined {
  shared ??= new PriceTable();
  return shared.costOf(usage, model, endpoint);
}
