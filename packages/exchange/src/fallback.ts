import {
  ConfigError,
  isDeadlineExceededError,
  isLbError,
  isNoHealthyEndpointError,
  type Router,
} from '@lb/core';
import type { Sink } from './attempt.js';

/** Why a request moved on to the next model of a chain. */
export type FallbackCause = 'context_window' | 'content_policy' | 'default';

/** Chains by model (or group) name: the models to try next, in order. */
export type FallbackChainTable = Readonly<Record<string, readonly string[]>>;

/**
 * The configured chains (`[fallbacks]`, `[fallbacks.context_window]`, `[fallbacks.content_policy]`; env
 * `LB_FALLBACKS`, `LB_CONTEXT_WINDOW_FALLBACKS`, `LB_CONTENT_POLICY_FALLBACKS`).
 */
export interface FallbackConfig {
  default?: FallbackChainTable;
  contextWindow?: FallbackChainTable;
  contentPolicy?: FallbackChainTable;
}

/** Request header: a per-request chain, `x-lb-fallbacks: gpt-4o-mini,claude-3-5-haiku`. */
export const FALLBACKS_REQUEST_HEADER = 'x-lb-fallbacks';
/** Response header: the model that answered, when a fallback was taken. */
export const FALLBACK_HEADER = 'x-lb-fallback';
/** Error bodies longer than this are not read for a cause (they are forwarded as they come). */
export const FALLBACK_BODY_LIMIT = 64 * 1024;

const CONTEXT =
  /context_length_exceeded|prompt is too long|maximum context length|context window|string_above_max_length|too many tokens/i;
const POLICY =
  /content_policy_violation|content_filter|ResponsibleAIPolicyViolation|content management policy/i;

/**
 * The cause a client-error answer stands for, from its status and body: `context_window` (OpenAI
 * `context_length_exceeded`, Anthropic "prompt is too long", Azure's "maximum context length"), `content_policy`
 * (OpenAI `content_policy_violation` / `content_filter`, Azure `ResponsibleAIPolicyViolation`), `default` for
 * `model_not_found`; undefined for anything else (a 2xx with `finish_reason: content_filter` is an answer, not a cause).
 */
export function fallbackCauseOf(status: number, body: string): FallbackCause | undefined {
  if (status < 400 || status >= 500) return undefined;
  if (CONTEXT.test(body)) return 'context_window';
  if (POLICY.test(body)) return 'content_policy';
  if (status === 404 && body.includes('model_not_found')) return 'default';
  return undefined;
}

/**
 * The cause a router failure stands for: `default` when the model or group could not be served at all (every endpoint
 * down, cooling, open, out of budget: `NoHealthyEndpointError`; an unknown model: `model_not_found`). Not a passed
 * deadline (the chain shares it), an abort or a bad request.
 */
export function fallbackCauseOfError(err: unknown): FallbackCause | undefined {
  if (!isLbError(err) || isDeadlineExceededError(err)) return undefined;
  if (isNoHealthyEndpointError(err)) return 'default';
  return err.code === 'model_not_found' ? 'default' : undefined;
}

/** The models of `x-lb-fallbacks: a, b` (at most 16, deduplicated), or undefined when none. */
export function parseFallbackList(v: string | readonly unknown[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const parts = typeof v === 'string' ? v.split(',') : v;
  const out: string[] = [];
  for (const p of parts) {
    if (typeof p !== 'string') continue;
    const m = p.trim();
    if (m !== '' && m.length <= 256 && !out.includes(m)) out.push(m);
    if (out.length === 16) break;
  }
  return out.length ? out : undefined;
}

/** True when `config` has any chain at all. */
export function hasFallbacks(config: FallbackConfig | undefined): boolean {
  if (config === undefined) return false;
  for (const t of [config.default, config.contextWindow, config.contentPolicy])
    if (t !== undefined && Object.keys(t).length > 0) return true;
  return false;
}

/**
 * One request's walk along its fallback chains, for both front ends. `model` is the model to ask for now; `next`
 * moves on for a cause (or says there is nowhere to go). A model is never tried twice (no loops), and the whole walk
 * shares the request's deadline: `deadlineMs()` is what is left of it for the next model.
 *
 * Which chain: the request's own (`models: [...]` after the first, or `x-lb-fallbacks`) for every cause when given;
 * else the configured chain of the cause for the model that failed, then the one of the primary model.
 */
export class FallbackRun {
  readonly primary: string;
  model: string;
  readonly #config: FallbackConfig | undefined;
  readonly #requested: readonly string[] | undefined;
  readonly #tried: string[];
  readonly #startedAt = Date.now();
  readonly #deadlineMs: number;

  constructor(
    primary: string,
    config: FallbackConfig | undefined,
    requested: readonly string[] | undefined,
    deadlineMs: number,
  ) {
    this.primary = primary;
    this.model = primary;
    this.#config = config;
    this.#requested = requested;
    this.#tried = [primary];
    this.#deadlineMs = deadlineMs;
  }

  /** A fallback was taken: the answer comes from `model`, not the primary. */
  get taken(): boolean {
    return this.model !== this.primary;
  }

  /** Whether a client-error answer's body is worth reading: some chain could still take the request. */
  wantsBody(status: number): boolean {
    if (status < 400 || status >= 500) return false;
    if (this.#requested !== undefined) return this.#requested.some((m) => !this.#tried.includes(m));
    const c = this.#config;
    return (
      c !== undefined &&
      (this.#chain(c.contextWindow) !== undefined ||
        this.#chain(c.contentPolicy) !== undefined ||
        (status === 404 && this.#chain(c.default) !== undefined))
    );
  }

  /** What is left of the deadline for the next model, ms (0 when it passed). */
  deadlineMs(): number {
    return Math.max(0, this.#deadlineMs - (Date.now() - this.#startedAt));
  }

  /**
   * Moves on for `cause`: the next untried model, or undefined when there is none or the deadline passed. Publishes
   * the `fallback` event on `router`'s bus.
   */
  next(cause: FallbackCause, router: Router, requestId: string): string | undefined {
    if (this.deadlineMs() <= 1) return undefined;
    const to = this.#pick(cause);
    if (to === undefined) return undefined;
    const from = this.model;
    this.#tried.push(to);
    this.model = to;
    router.publishFallback({ requestId, from, to, cause });
    return to;
  }

  #pick(cause: FallbackCause): string | undefined {
    const req = this.#requested;
    if (req !== undefined) return req.find((m) => !this.#tried.includes(m));
    const c = this.#config;
    if (c === undefined) return undefined;
    const table =
      cause === 'context_window' ? c.contextWindow : cause === 'content_policy' ? c.contentPolicy : c.default;
    return this.#chain(table);
  }

  /** The first untried model of the current model's chain in `table`, else of the primary's. */
  #chain(table: FallbackChainTable | undefined): string | undefined {
    if (table === undefined) return undefined;
    for (const from of this.model === this.primary ? [this.model] : [this.model, this.primary]) {
      const list = Object.hasOwn(table, from) ? table[from] : undefined;
      const m = list?.find((x) => !this.#tried.includes(x));
      if (m !== undefined) return m;
    }
    return undefined;
  }
}

/**
 * A sink that keeps a (client-error) body whole, up to {@link FALLBACK_BODY_LIMIT} bytes; `done` settles with the
 * bytes at its end (or the error). Past the limit it keeps taking, so the caller must check `over`.
 */
export class BodyCollector implements Sink {
  readonly chunks: Uint8Array[] = [];
  size = 0;
  readonly done: Promise<void>;
  #resolve!: () => void;
  #reject!: (e: Error) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  data(chunk: Uint8Array): boolean {
    this.chunks.push(chunk);
    this.size += chunk.length;
    return true;
  }

  end(): void {
    this.#resolve();
  }

  error(err: Error): void {
    this.#reject(err);
  }

  /** The body as one buffer. */
  bytes(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0];
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/** The environment variables of the chains, JSON objects `{"model": ["next", …]}`, by the field they fill. */
export const FALLBACK_ENV_VARS = {
  default: 'LB_FALLBACKS',
  contextWindow: 'LB_CONTEXT_WINDOW_FALLBACKS',
  contentPolicy: 'LB_CONTENT_POLICY_FALLBACKS',
} as const;

/**
 * The chains `LB_FALLBACKS`, `LB_CONTEXT_WINDOW_FALLBACKS` and `LB_CONTENT_POLICY_FALLBACKS` give (`read` returns a
 * variable), or undefined when none is set. Throws a `ConfigError` naming the variable when one is not a JSON object of
 * model → list of model names.
 */
export function fallbackConfigFromEnv(
  read: (name: string) => string | undefined,
): FallbackConfig | undefined {
  let out: Record<string, FallbackChainTable> | undefined;
  for (const [field, name] of Object.entries(FALLBACK_ENV_VARS)) {
    const v = read(name);
    if (v === undefined || v.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      throw new ConfigError(`${name}: expected a JSON object such as {"gpt-4o":["gpt-4o-mini"]}`);
    }
    if (
      parsed === null ||
      typeof parsed !== 'object' ||
      Array.isArray(parsed) ||
      !Object.values(parsed).every(
        (l) => Array.isArray(l) && l.every((m) => typeof m === 'string' && m.trim() !== ''),
      )
    )
      throw new ConfigError(`${name}: expected a JSON object of model → list of model names`);
    // Names trimmed, as `@lb/config-env` reads the same variables.
    const table: Record<string, string[]> = {};
    for (const [k, l] of Object.entries(parsed as Record<string, string[]>))
      table[k] = l.map((m) => m.trim());
    (out ??= {})[field] = table as FallbackChainTable;
  }
  return out;
}

/**
 * Every model name a client may ask for: `served` (the router's models and groups) plus each chain's models and
 * targets, in that order, once each. For `/v1/models`.
 */
export function modelsWithFallbacks(served: readonly string[], config: FallbackConfig | undefined): string[] {
  const out = new Set(served);
  if (config !== undefined)
    for (const t of [config.default, config.contextWindow, config.contentPolicy])
      if (t !== undefined)
        for (const [from, to] of Object.entries(t)) {
          out.add(from);
          for (const m of to) out.add(m);
        }
  return [...out];
}
