import {
  ConfigError,
  createRouter,
  type Guard,
  NoHealthyEndpointError,
  type RouteRequest,
  Router,
  type RouterConfig,
} from '@lb/core';
import OpenAI, { AzureOpenAI, type ClientOptions } from 'openai';
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import type { ImageGenerateParamsNonStreaming, ImagesResponse } from 'openai/resources/images';
import {
  type DetailedHealth,
  detailedHealth,
  type KeyHealthStatus,
  keyHealthStatus,
  type ModelInfo,
  modelInfo,
  trackModels,
} from './health.js';
import { readEnv } from './internal/env.js';
import { createRouterFetch, PLACEHOLDER_BASE_URL, type RouterFetchOptions } from './router-fetch.js';

const ROUTER_KEYS = [
  'endpoints',
  'strategy',
  'strategyOptions',
  'models',
  'failover',
  'maxRetries',
  'backoff',
  'deadlineMs',
  'timeoutMs',
  'rateLimitCooldownMs',
  'maxCooldownMs',
  'maxRetryAfterMs',
  'keyRetireMs',
  'maxWaitMs',
  'ewmaAlpha',
  'now',
  'random',
] as const satisfies readonly (keyof RouterConfig)[];

/** The openai SDK options the adapter passes through (it owns `apiKey`, `baseURL`, `fetch` and `maxRetries`). */
export type PassThroughClientOptions = Omit<ClientOptions, 'apiKey' | 'baseURL' | 'fetch' | 'maxRetries'>;

/** Adapter settings shared by every way of building a client. */
export interface AdapterOptions extends Omit<RouterFetchOptions, 'baseURL'>, PassThroughClientOptions {
  /**
   * Model the helpers (`generateText`, `createChatCompletion`, `generateImage` excepted) use when none is named.
   * Default: the config-env config's `defaultModel`, else env `OPENAI_MODEL`, else `gpt-4o-mini`.
   */
  defaultModel?: string;
  /**
   * Called once with the router when the client is built, e.g. `(r) => attachBreaker(r)`,
   * `(r) => attachRateLimiter(r)`. What they return is kept in `client.attachments`. Default none.
   */
  attach?: ReadonlyArray<(router: Router) => unknown>;
  /** Guards to add to the router when the client is built. Default none. */
  guards?: readonly Guard[];
  /** Count requests per model for {@link LoadBalancedOpenAI.getModelInfo} (one bus subscription per router). Default true. */
  trackModels?: boolean;
}

/** A config from `@lb/config-env` (`loadConfig()`), or any object carrying a router (config or instance). */
export interface RouterSource {
  /** A Router, a router config, or a whole `@lb/config-env` config (`{ router: loadConfig() }`). */
  router: Router | RouterConfig | { readonly router: RouterConfig };
  defaultModel?: string;
  /** Model fallback chains (`[fallbacks]` of a config-env config). */
  fallbacks?: RouterFetchOptions['fallbacks'];
  server?: {
    streamIdleTimeoutMs?: number;
    streamFirstByteTimeoutMs?: number;
    streamProbationHoldMs?: number;
    streamProbationMaxBytes?: number;
    maxEventBytes?: number;
    maxStreamDurationMs?: number;
    responseHeaders?: boolean;
  };
}

/**
 * What `new LoadBalancedOpenAI(…)` takes: a router config inline (`{ endpoints, strategy, … }`), or `{ router }` (an
 * `@lb/core` Router, a router config, or a whole `@lb/config-env` config), plus {@link AdapterOptions}.
 * `maxRetries` and `timeoutMs` are the router's (failover attempts, per-attempt timeout); `timeout` is the SDK's.
 */
export type LoadBalancedOpenAIOptions = AdapterOptions & (RouterConfig | RouterSource);

interface Resolved {
  router: Router;
  adapter: AdapterOptions;
  created: boolean;
}

function isRouter(v: unknown): v is Router {
  return (
    v instanceof Router ||
    (typeof v === 'object' &&
      v !== null &&
      typeof (v as Router).execute === 'function' &&
      typeof (v as Router).snapshot === 'function')
  );
}

function resolve(options: LoadBalancedOpenAIOptions): Resolved {
  if (!options || typeof options !== 'object') {
    throw new ConfigError(
      `LoadBalancedOpenAI: expected { endpoints, … } or { router }, received ${options === null ? 'null' : typeof options}`,
    );
  }
  const adapter: Record<string, unknown> = { ...options };
  let router: Router;
  let created = false;
  if ('router' in options && options.router !== undefined) {
    let src = options as RouterSource & AdapterOptions;
    // `{ router: loadConfig() }`: a whole @lb/config-env config given as the router.
    const inner = src.router as unknown as RouterSource;
    if (!isRouter(inner) && inner && typeof inner === 'object' && 'router' in inner && inner.router) {
      src = { ...inner, ...src, router: inner.router } as RouterSource & AdapterOptions;
    }
    delete adapter.router;
    delete adapter.healthCheck;
    delete adapter.breaker;
    delete adapter.source;
    delete adapter.warnings;
    delete adapter.server;
    if (isRouter(src.router)) router = src.router;
    else {
      router = createRouter(src.router as RouterConfig);
      created = true;
    }
    adapter.defaultModel ??= src.defaultModel;
    adapter.fallbacks ??= src.fallbacks;
    adapter.streamIdleTimeoutMs ??= src.server?.streamIdleTimeoutMs;
    adapter.streamFirstByteTimeoutMs ??= src.server?.streamFirstByteTimeoutMs;
    adapter.streamProbationHoldMs ??= src.server?.streamProbationHoldMs;
    adapter.streamProbationMaxBytes ??= src.server?.streamProbationMaxBytes;
    adapter.maxEventBytes ??= src.server?.maxEventBytes;
    adapter.maxStreamDurationMs ??= src.server?.maxStreamDurationMs;
    adapter.responseHeaders ??= src.server?.responseHeaders;
  } else if (Array.isArray((options as RouterConfig).endpoints)) {
    const cfg: Record<string, unknown> = {};
    for (const k of ROUTER_KEYS) {
      if (k in options) cfg[k] = (options as unknown as Record<string, unknown>)[k];
      delete adapter[k];
    }
    router = createRouter(cfg as unknown as RouterConfig);
    created = true;
  } else {
    throw new ConfigError(
      `LoadBalancedOpenAI: expected options.endpoints (an array) or options.router, received keys ${JSON.stringify(Object.keys(options))}`,
    );
  }
  return { router, adapter: adapter as AdapterOptions, created };
}

/** Options of {@link LoadBalancedOpenAI.generateText}. */
export type GenerateTextOptions = Omit<ChatCompletionCreateParamsNonStreaming, 'model' | 'messages'> & {
  /** A system message put before the prompt. */
  system?: string;
  /** Aborts the call (and the upstream request). */
  signal?: AbortSignal;
};

/** Options of {@link LoadBalancedOpenAI.createChatCompletion}: the SDK's params, `model` optional. */
export type ChatCompletionOptions = Omit<ChatCompletionCreateParamsNonStreaming, 'messages' | 'model'> & {
  /** Default: the client's `defaultModel`. */
  model?: string;
  signal?: AbortSignal;
};

/** Options of {@link LoadBalancedOpenAI.generateImage}: the SDK's params less the prompt. */
export type GenerateImageOptions = Omit<ImageGenerateParamsNonStreaming, 'prompt'> & { signal?: AbortSignal };

/**
 * A real `OpenAI` client (every SDK method: chat, completions, embeddings, images, audio, responses, files, models,
 * batches, …) whose every HTTP call goes through an `@lb/core` router: endpoint choice, per-endpoint URL, key and
 * model mapping (`@lb/providers` dialects: OpenAI-compatible, Azure, Anthropic), failover, cooldowns. The SDK's own
 * retries are off (`maxRetries: 0`) so they do not multiply with the router's. Streams fail over until their first
 * byte; later breaks reject the stream's iteration promptly. Caller aborts cancel the upstream request.
 *
 * @example
 * const client = new LoadBalancedOpenAI({
 *   endpoints: [
 *     { id: 'primary', url: 'https://api.openai.com/v1', apiKey: process.env.OPENAI_API_KEY },
 *     { id: 'backup', url: 'https://proxy.example/v1', apiKey: process.env.PROXY_KEY, priority: 2,
 *       modelMap: { 'gpt-4o': 'gpt-4o-2024-08-06' } },
 *   ],
 *   strategy: 'priority',
 * });
 * const r = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] });
 * client.router.snapshot();
 *
 * @example
 * // From @lb/config-env, with a circuit breaker
 * const client = new LoadBalancedOpenAI({ router: loadConfig(), attach: [(r) => attachBreaker(r)] });
 */
export class LoadBalancedOpenAI extends OpenAI {
  /** The router behind the client: `snapshot()`, `getStats(id)`, `setEndpointHealth(id, bool)`, `on(event)`, `reload()`. */
  readonly router: Router;
  /** What the `attach` functions returned, in order (breaker handle, rate limiter handle, …). */
  readonly attachments: readonly unknown[];
  /** Model the helpers use when none is named. */
  readonly defaultModel: string;
  readonly #adapter: AdapterOptions;

  constructor(options: LoadBalancedOpenAIOptions) {
    const { router, adapter } = resolve(options);
    const {
      fetch,
      streamFirstByteTimeoutMs,
      streamIdleTimeoutMs,
      streamProbationHoldMs,
      streamProbationMaxBytes,
      maxEventBytes,
      maxStreamDurationMs,
      providerGuard,
      route,
      responseHeaders,
      tracing,
      fallbacks,
      affinity,
      hedge,
      streamContinue,
      cost,
      defaultModel,
      attach,
      guards,
      trackModels: track,
      ...clientOptions
    } = adapter;
    if (attach !== undefined && !Array.isArray(attach)) {
      throw new ConfigError(
        `LoadBalancedOpenAI: options.attach must be an array of functions, received ${typeof attach}`,
      );
    }
    if (defaultModel !== undefined && (typeof defaultModel !== 'string' || defaultModel === '')) {
      throw new ConfigError(
        `LoadBalancedOpenAI: options.defaultModel must be a model name, received ${JSON.stringify(defaultModel)}`,
      );
    }
    const routerFetch = createRouterFetch(router, {
      fetch,
      streamFirstByteTimeoutMs,
      streamIdleTimeoutMs,
      streamProbationHoldMs,
      streamProbationMaxBytes,
      maxEventBytes,
      maxStreamDurationMs,
      providerGuard,
      route,
      responseHeaders,
      tracing,
      fallbacks,
      affinity,
      hedge,
      streamContinue,
      cost,
    });
    super({
      ...(clientOptions as PassThroughClientOptions),
      apiKey: 'lb-managed',
      baseURL: PLACEHOLDER_BASE_URL,
      fetch: routerFetch,
      maxRetries: 0,
    });
    this.router = router;
    this.defaultModel = defaultModel ?? readEnv('OPENAI_MODEL') ?? 'gpt-4o-mini';
    for (const g of guards ?? []) router.addGuard(g);
    this.attachments = (attach ?? []).map((fn, i) => {
      if (typeof fn !== 'function') {
        throw new ConfigError(
          `LoadBalancedOpenAI: options.attach[${i}] must be a function, received ${typeof fn}`,
        );
      }
      return fn(router);
    });
    if (track !== false) trackModels(router);
    // Kept for withOptions(): the same router, nothing attached twice.
    this.#adapter = { ...adapter, attach: undefined, guards: undefined, defaultModel: this.defaultModel };
  }

  /**
   * A copy with other SDK options (timeout, headers, logger…) sharing this client's router. `apiKey`, `baseURL`,
   * `fetch` and `maxRetries` stay the adapter's.
   */
  override withOptions(options: Partial<ClientOptions>): this {
    const { apiKey: _a, baseURL: _b, fetch: _f, maxRetries: _m, ...rest } = options;
    const Ctor = this.constructor as new (o: LoadBalancedOpenAIOptions) => this;
    return new Ctor({ ...this.#adapter, ...rest, router: this.router } as LoadBalancedOpenAIOptions);
  }

  /**
   * Sends one user prompt (after an optional system message) and returns the answer's text (`''` when empty).
   *
   * @example
   * const text = await client.generateText('Say hi', 'gpt-4o-mini', { temperature: 0 });
   */
  async generateText(prompt: string, model?: string, options: GenerateTextOptions = {}): Promise<string> {
    if (typeof prompt !== 'string')
      throw new TypeError(`generateText: prompt must be a string, received ${typeof prompt}`);
    const { system, signal, ...params } = options;
    const messages: ChatCompletionMessageParam[] = system
      ? [
          { role: 'system', content: system },
          { role: 'user', content: prompt },
        ]
      : [{ role: 'user', content: prompt }];
    const r = await this.chat.completions.create(
      { ...params, model: model ?? this.defaultModel, messages, stream: false },
      signal ? { signal } : undefined,
    );
    return r.choices[0]?.message?.content ?? '';
  }

  /**
   * `chat.completions.create` with the model optional (default `defaultModel`); returns the SDK's `ChatCompletion`.
   *
   * @example
   * const c = await client.createChatCompletion([{ role: 'user', content: 'Hi' }], { max_tokens: 50 });
   * c.choices[0].message.content;
   */
  async createChatCompletion(
    messages: ChatCompletionMessageParam[],
    options: ChatCompletionOptions = {},
  ): Promise<ChatCompletion> {
    if (!Array.isArray(messages)) {
      throw new TypeError(`createChatCompletion: messages must be an array, received ${typeof messages}`);
    }
    const { signal, model, ...params } = options;
    return this.chat.completions.create(
      { ...params, model: model ?? this.defaultModel, messages, stream: false },
      signal ? { signal } : undefined,
    );
  }

  /**
   * `images.generate` for one prompt; returns the SDK's `ImagesResponse` (`data[i].url` or `b64_json`).
   *
   * @example
   * const { data } = await client.generateImage('a lighthouse at dawn', { size: '1024x1024' });
   */
  async generateImage(prompt: string, options: GenerateImageOptions = {}): Promise<ImagesResponse> {
    if (typeof prompt !== 'string')
      throw new TypeError(`generateImage: prompt must be a string, received ${typeof prompt}`);
    const { signal, ...params } = options;
    return this.images.generate({ ...params, prompt, stream: false }, signal ? { signal } : undefined);
  }

  /**
   * Per-key health: healthy/total and, per endpoint, the masked key, state, success rate, error count, last use,
   * response time, rate limiting and recovery time. See {@link keyHealthStatus}.
   */
  getKeyHealthStatus(): KeyHealthStatus {
    return keyHealthStatus(this.router);
  }

  /** Everything a health page shows (summary, strategy, per-endpoint counters and guard states). See {@link detailedHealth}. */
  getDetailedHealth(): DetailedHealth {
    return detailedHealth(this.router);
  }

  /** Models served, by whom (with upstream names), and per-model request statistics. See {@link modelInfo}. */
  getModelInfo(): ModelInfo {
    return modelInfo(this.router, this.defaultModel);
  }

  /**
   * A plain SDK client bound to the endpoint the router would pick now (for `model`, default any): `AzureOpenAI`
   * for Azure endpoints, `OpenAI` otherwise. It bypasses the router: no failover, no model mapping, no statistics,
   * and the SDK's own retries (default 2) apply. Throws `NoHealthyEndpointError` when no endpoint is available, and
   * a `ConfigError` for providers the SDK cannot speak to (Anthropic).
   *
   * @example
   * const direct = client.getDirectClient('gpt-4o');
   * await direct.models.list();
   */
  getDirectClient(model?: string, options: PassThroughClientOptions = {}): OpenAI {
    const req: RouteRequest = model === undefined ? {} : { model };
    const c = this.router.pick(req);
    if (!c) {
      throw new NoHealthyEndpointError({ attempts: [], model, reason: 'no endpoint is available now' });
    }
    const ep = c.endpoint;
    const base = {
      timeout: this.timeout,
      logger: this.logger,
      defaultHeaders: { ...ep.headers },
      ...options,
    };
    if (ep.provider === 'azure' || ep.provider === 'azure-openai') {
      const meta = ep.meta as { apiVersion?: string; deployments?: Record<string, string> };
      const deployment = model === undefined ? undefined : (meta.deployments?.[model] ?? c.upstreamModel);
      return new AzureOpenAI({
        ...base,
        apiKey: ep.apiKey,
        endpoint: ep.url.replace(/\/openai(\/v1)?$/, ''),
        apiVersion: meta.apiVersion ?? '2024-10-21',
        deployment,
      });
    }
    if (ep.provider === 'anthropic' || ep.provider === 'claude') {
      throw new ConfigError(
        `getDirectClient: endpoint ${JSON.stringify(ep.id)} speaks the anthropic dialect, which the openai SDK cannot call directly`,
      );
    }
    return new OpenAI({ ...base, apiKey: ep.apiKey ?? 'no-key', baseURL: ep.url });
  }
}

/**
 * Builds a {@link LoadBalancedOpenAI} client over an existing router.
 *
 * @example
 * const router = createRouter({ endpoints });
 * const openai = createOpenAI(router, { timeout: 30_000 });
 * const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
 * for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? '');
 */
export function createOpenAI(router: Router, options: AdapterOptions = {}): LoadBalancedOpenAI {
  if (!isRouter(router)) {
    throw new ConfigError(
      `createOpenAI: expected an @lb/core Router (createRouter(config)), received ${router === null ? 'null' : typeof router}`,
    );
  }
  return new LoadBalancedOpenAI({ ...options, router });
}
