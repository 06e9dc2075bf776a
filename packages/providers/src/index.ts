/**
 * @lb/providers — provider dialects behind one OpenAI-compatible surface: OpenAI-compatible servers, Azure OpenAI
 * and Anthropic's Messages API (translated both ways, streaming included). Shared by `@lb/server` and
 * `@lb/openai-adapter`; register your own dialect with `registerDialect`.
 */

export { replaceModel, replaceMultipartModel } from './body.js';
export type { AnthropicDialectOptions } from './dialects/anthropic.js';
export {
  ANTHROPIC_DEFAULT_MAX_TOKENS,
  ANTHROPIC_DEFAULT_VERSION,
  anthropicDialect,
  createAnthropicDialect,
} from './dialects/anthropic.js';
export { isErrorEvent, streamErrorOf } from './dialects/anthropic-errors.js';
export { AZURE_DEFAULT_API_VERSION, azureDialect } from './dialects/azure.js';
export { openaiDialect } from './dialects/openai.js';
export { isProviderError, ProviderError } from './errors.js';
export { FEATURE_PARAMS, FEATURES, type Feature, requestFeatures } from './features.js';
export { explainUnservable, providerGuard } from './guard.js';
export type { StripOptions } from './headers.js';
export { stripHopByHop } from './headers.js';
export { operationOf } from './operation.js';
export { dialectNames, findDialect, getDialect, registerDialect } from './registry.js';
export { type ErrorFields, errorEventStatus, STATUS_OF_ERROR_TYPE } from './stream-errors.js';
export type {
  Dialect,
  DialectRequest,
  Operation,
  StreamFailure,
  StreamTranslator,
  TranslatedResponse,
  UpstreamRequest,
} from './types.js';
export { hasErrorEvent, hasUsage } from './usage.js';
