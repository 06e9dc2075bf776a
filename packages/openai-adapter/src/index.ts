/**
 * @lb/openai-adapter — a drop-in `openai` SDK client whose every call fails over across endpoints through an
 * `@lb/core` router, streaming included; and the same mechanism as a plain `fetch` for any other SDK.
 */

export type {
  AdapterOptions,
  ChatCompletionOptions,
  GenerateImageOptions,
  GenerateTextOptions,
  LoadBalancedOpenAIOptions,
  PassThroughClientOptions,
  RouterSource,
} from './client.js';
export {
  createOpenAI,
  /** Alias of {@link createOpenAI}, for files that also import `createOpenAI` from `@ai-sdk/openai`. */
  createOpenAI as createLoadBalancedOpenAI,
  LoadBalancedOpenAI,
} from './client.js';
export {
  isStreamInterruptedError,
  isStreamTimeoutError,
  StreamInterruptedError,
  StreamTimeoutError,
} from './errors.js';
export type {
  DetailedEndpointHealth,
  DetailedHealth,
  KeyHealth,
  KeyHealthStatus,
  ModelInfo,
  ModelStats,
} from './health.js';
export { detailedHealth, keyHealthStatus, modelInfo, trackModels } from './health.js';
export type { FetchLike, RouteInfo, RouterFetchOptions } from './router-fetch.js';
export { createRouterFetch, PLACEHOLDER_BASE_URL } from './router-fetch.js';
