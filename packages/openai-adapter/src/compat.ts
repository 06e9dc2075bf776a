/**
 * `@lb/openai-adapter/compat` — thin shapes for code migrating from `OpenAIEnhancedService` /
 * `EnhancedOpenAIClient` style wrappers: a list of keys (and fallback endpoints) in, the same helpers out.
 * New code should use `LoadBalancedOpenAI` from the main entry.
 */
import { ConfigError, type EndpointConfig } from '@lb/core';
import type { ChatCompletion, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { ImagesResponse } from 'openai/resources/images';
import {
  type AdapterOptions,
  type ChatCompletionOptions,
  type GenerateImageOptions,
  type GenerateTextOptions,
  LoadBalancedOpenAI,
  type LoadBalancedOpenAIOptions,
} from './client.js';
import type { DetailedHealth, KeyHealthStatus, ModelInfo } from './health.js';

/** The options the wrappers people migrate from took. */
export interface EnhancedClientOptions extends AdapterOptions {
  /** API keys for `baseURL`: tried in order with the `priority` strategy (default), sharing traffic with others. */
  apiKeys?: readonly string[];
  /** Base URL of the keys. Default `https://api.openai.com/v1`. */
  baseURL?: string;
  /** More endpoints, used only while every key is unavailable (unless they set their own `priority`). */
  fallbackEndpoints?: readonly EndpointConfig[];
  /** Strategy name. Default `priority`. */
  strategy?: string;
  /** Failover attempts after the first. Default 3. */
  maxRetries?: number;
  /** Fail over at all. Default true. */
  fallbackEnabled?: boolean;
}

function toOptions(o: EnhancedClientOptions | LoadBalancedOpenAIOptions): LoadBalancedOpenAIOptions {
  if ('router' in o || 'endpoints' in o) return o as LoadBalancedOpenAIOptions;
  const { apiKeys, baseURL, fallbackEndpoints, strategy, maxRetries, fallbackEnabled, ...adapter } =
    o as EnhancedClientOptions;
  if (apiKeys !== undefined && !Array.isArray(apiKeys)) {
    throw new ConfigError(
      `EnhancedOpenAIClient: apiKeys must be an array of keys, received ${typeof apiKeys}`,
    );
  }
  const url = baseURL ?? 'https://api.openai.com/v1';
  // With the priority strategy the keys are tried in order; with others they share traffic.
  const ordered = strategy === undefined || strategy === 'priority';
  const endpoints: EndpointConfig[] = (apiKeys ?? []).map((apiKey, i) => ({
    id: `key-${i + 1}`,
    url,
    apiKey,
    priority: ordered ? i + 1 : 1,
  }));
  const after = (ordered ? endpoints.length : 1) + 1;
  for (const f of fallbackEndpoints ?? []) endpoints.push({ priority: after, ...f });
  return { ...adapter, endpoints, strategy, maxRetries, failover: fallbackEnabled };
}

/**
 * An `OpenAI` client built from a list of keys (plus fallback endpoints): a {@link LoadBalancedOpenAI}.
 *
 * @example
 * const client = new EnhancedOpenAIClient({ apiKeys: [process.env.KEY_1!, process.env.KEY_2!], strategy: 'round-robin' });
 * await client.generateText('Hello');
 */
export class EnhancedOpenAIClient extends LoadBalancedOpenAI {
  constructor(options: EnhancedClientOptions | LoadBalancedOpenAIOptions) {
    super(toOptions(options));
  }
}

/**
 * The service facade of the wrappers people migrate from: helpers plus `getClient()`.
 *
 * @example
 * const service = new OpenAIEnhancedService({ apiKeys: [k1, k2] });
 * const text = await service.generateText('Hello');
 * service.getKeyHealthStatus();
 */
export class OpenAIEnhancedService {
  readonly client: LoadBalancedOpenAI;

  constructor(options: EnhancedClientOptions | LoadBalancedOpenAIOptions | LoadBalancedOpenAI) {
    this.client =
      options instanceof LoadBalancedOpenAI ? options : new LoadBalancedOpenAI(toOptions(options));
  }

  /** The load-balanced `OpenAI` client (every SDK method). */
  getClient(): LoadBalancedOpenAI {
    return this.client;
  }

  generateText(prompt: string, model?: string, options?: GenerateTextOptions): Promise<string> {
    return this.client.generateText(prompt, model, options);
  }

  createChatCompletion(
    messages: ChatCompletionMessageParam[],
    options?: ChatCompletionOptions,
  ): Promise<ChatCompletion> {
    return this.client.createChatCompletion(messages, options);
  }

  generateImage(prompt: string, options?: GenerateImageOptions): Promise<ImagesResponse> {
    return this.client.generateImage(prompt, options);
  }

  getKeyHealthStatus(): KeyHealthStatus {
    return this.client.getKeyHealthStatus();
  }

  getDetailedHealth(): DetailedHealth {
    return this.client.getDetailedHealth();
  }

  getModelInfo(): ModelInfo {
    return this.client.getModelInfo();
  }

  /** Puts an endpoint back (`true`) or takes it out (`false`) by hand. */
  setEndpointHealth(id: string, healthy: boolean): boolean {
    return this.client.router.setEndpointHealth(id, healthy);
  }
}

export type { EnhancedClientOptions as OpenAIEnhancedServiceOptions };
