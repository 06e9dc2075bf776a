import { ConfigError, type Endpoint, redact } from '@lb/core';
import { fromUtf8 } from '../body.js';
import { ProviderError } from '../errors.js';
import type {
  Dialect,
  DialectRequest,
  StreamTranslator,
  TranslatedResponse,
  UpstreamRequest,
} from '../types.js';
import { anthropicErrorStatus, openAIErrorFromAnthropic } from './anthropic-errors.js';
import { toAnthropicRequest } from './anthropic-request.js';
import { toChatCompletion, toOpenAIModel, toOpenAIModelList } from './anthropic-response.js';
import { AnthropicStreamTranslator } from './anthropic-stream.js';
import { upstreamHeaders } from './shared.js';

/** Default `anthropic-version` header. */
export const ANTHROPIC_DEFAULT_VERSION = '2023-06-01';
/** Default `max_tokens` when the client sends none (Anthropic requires one). */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

/** Options of {@link createAnthropicDialect}. No environment variables are read. */
export interface AnthropicDialectOptions {
  /** Registered name. Default `'anthropic'`. */
  name?: string;
  /** `anthropic-version` header. Default `'2023-06-01'`; per endpoint: `meta.anthropicVersion`. */
  version?: string;
  /** `max_tokens` sent when the request has neither `max_completion_tokens` nor `max_tokens`. Default 4096 (tokens); per endpoint: `meta.maxTokens`. */
  defaultMaxTokens?: number;
  /** Clock for `created` fields and rate-limit resets, epoch ms. Default `Date.now`. */
  now?: () => number;
}

const SUPPORTED = new Set(['chat.completions', 'models.list', 'models.retrieve']);
const LACKS: readonly string[] = Object.freeze(['n', 'logprobs', 'audio']);

interface Settings {
  base: string;
  version: string;
  maxTokens: number;
  beta: string | undefined;
}

function bad(message: string): ConfigError {
  return new ConfigError(message);
}

/**
 * Creates an Anthropic (Messages API) dialect. Endpoint `url` defaults in docs to `https://api.anthropic.com/v1`
 * (a bare origin gets `/v1`); the key is sent as `x-api-key`. Per endpoint `meta`: `anthropicVersion`, `maxTokens`,
 * `beta` (the `anthropic-beta` header). Chat completions are translated both ways (streaming included); models
 * list/retrieve are translated; other operations are not supported (the {@link providerGuard} routes them
 * elsewhere). Errors keep their HTTP status (529 overloaded, 429 with `retry-after`) and are rendered in OpenAI's
 * error shape.
 *
 * @example
 * registerDialect(createAnthropicDialect({ defaultMaxTokens: 8192 }));
 */
export function createAnthropicDialect(options: AnthropicDialectOptions = {}): Dialect {
  const name = options.name ?? 'anthropic';
  if (typeof name !== 'string' || !name)
    throw bad(`anthropic dialect: name must be a non-empty string, received ${JSON.stringify(name)}`);
  const version = options.version ?? ANTHROPIC_DEFAULT_VERSION;
  if (typeof version !== 'string' || !version) {
    throw bad(`anthropic dialect: version must be a non-empty string, received ${JSON.stringify(version)}`);
  }
  const defaultMaxTokens = options.defaultMaxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS;
  if (!Number.isInteger(defaultMaxTokens) || defaultMaxTokens < 1) {
    throw bad(
      `anthropic dialect: defaultMaxTokens must be a positive integer, received ${JSON.stringify(defaultMaxTokens)}`,
    );
  }
  const now = options.now ?? Date.now;
  if (typeof now !== 'function')
    throw bad(`anthropic dialect: now must be a function, received ${typeof now}`);

  const cache = new WeakMap<Endpoint, Settings>();
  const settings = (ep: Endpoint): Settings => {
    let s = cache.get(ep);
    if (s) return s;
    const where = `endpoint ${JSON.stringify(ep.id)}`;
    const v = ep.meta.anthropicVersion ?? version;
    if (typeof v !== 'string' || !v)
      throw bad(`${where}: meta.anthropicVersion must be a string, received ${JSON.stringify(v)}`);
    const max = ep.meta.maxTokens ?? defaultMaxTokens;
    if (!Number.isInteger(max) || (max as number) < 1) {
      throw bad(`${where}: meta.maxTokens must be a positive integer, received ${JSON.stringify(max)}`);
    }
    const beta = ep.meta.beta;
    if (beta !== undefined && typeof beta !== 'string' && !Array.isArray(beta)) {
      throw bad(
        `${where}: meta.beta must be a string or an array of strings, received ${JSON.stringify(beta)}`,
      );
    }
    const url = new URL(ep.url);
    const base = url.pathname === '/' || url.pathname === '' ? `${ep.url.replace(/\/+$/, '')}/v1` : ep.url;
    s = { base, version: v, maxTokens: max as number, beta: Array.isArray(beta) ? beta.join(',') : beta };
    cache.set(ep, s);
    return s;
  };

  const prepare = (req: DialectRequest): UpstreamRequest => {
    const s = settings(req.endpoint);
    const own: Record<string, string> = { 'anthropic-version': s.version };
    const key = req.endpoint.apiKey;
    if (key) own['x-api-key'] = key;
    if (s.beta) own['anthropic-beta'] = s.beta;
    if (req.operation === 'chat.completions') {
      if (!req.json) {
        throw new ProviderError('chat.completions: the request body must be a JSON object', {
          status: 400,
          code: 'invalid_request',
          provider: name,
        });
      }
      own['content-type'] = 'application/json';
      const body = toAnthropicRequest(req.json, { model: req.upstreamModel, maxTokens: s.maxTokens });
      if (req.stream) body.stream = true;
      return {
        url: `${s.base}/messages`,
        method: 'POST',
        headers: upstreamHeaders(req, own, true),
        body: JSON.stringify(body),
      };
    }
    if (req.operation === 'models.list' || req.operation === 'models.retrieve') {
      const path = req.path.startsWith('/v1/') ? req.path.slice(3) : req.path;
      return { url: s.base + path, method: 'GET', headers: upstreamHeaders(req, own, true), body: undefined };
    }
    throw new ProviderError(`provider ${name} does not support ${req.operation}`, {
      status: 400,
      code: 'unsupported_operation',
      provider: name,
    });
  };

  const translateResponse = (
    status: number,
    headers: Record<string, string>,
    body: Uint8Array,
    req: DialectRequest,
  ): TranslatedResponse => {
    const out: Record<string, string> = {};
    for (const k in headers) {
      if (
        k === 'content-length' ||
        k === 'content-encoding' ||
        k === 'transfer-encoding' ||
        k === 'content-type'
      )
        continue;
      out[k] = headers[k];
    }
    out['content-type'] = 'application/json';
    const text = fromUtf8(body);
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    const created = Math.floor(now() / 1000);
    if (status >= 400 || parsed?.type === 'error') {
      const type = typeof parsed?.error?.type === 'string' ? parsed.error.type : '';
      const raw =
        typeof parsed?.error?.message === 'string'
          ? parsed.error.message
          : text
            ? `Anthropic answered ${status}: ${text.slice(0, 500)}`
            : `Anthropic answered ${status}`;
      const finalStatus = status >= 400 ? status : anthropicErrorStatus(type);
      if (finalStatus === 429 && out['retry-after'] === undefined && out['retry-after-ms'] === undefined) {
        // Anthropic's resets are RFC 3339 instants; core understands retry-after-ms.
        const reset = out['anthropic-ratelimit-requests-reset'] ?? out['anthropic-ratelimit-tokens-reset'];
        const at = reset ? Date.parse(reset) : Number.NaN;
        if (Number.isFinite(at) && at > now()) out['retry-after-ms'] = String(Math.ceil(at - now()));
      }
      const message = redact(raw, [req.endpoint.apiKey]);
      return {
        status: finalStatus,
        headers: out,
        body: JSON.stringify(openAIErrorFromAnthropic(type, message, finalStatus)),
      };
    }
    if (parsed === undefined || typeof parsed !== 'object') {
      const e = new ProviderError(`Anthropic answered ${status} with a body that is not JSON`, {
        status: 502,
        code: 'bad_upstream_response',
        provider: name,
      });
      return { status: 502, headers: out, body: JSON.stringify(e.toOpenAIError()) };
    }
    let result: Record<string, unknown>;
    if (req.operation === 'models.list') result = toOpenAIModelList(parsed, created);
    else if (req.operation === 'models.retrieve') result = toOpenAIModel(parsed, created);
    else result = toChatCompletion(parsed, created);
    return { status, headers: out, body: JSON.stringify(result) };
  };

  const createStreamTranslator = (req: DialectRequest): StreamTranslator =>
    new AnthropicStreamTranslator(
      Math.floor(now() / 1000),
      req.json?.stream_options?.include_usage === true,
      req.upstreamModel,
    );

  return Object.freeze({
    name,
    supports: (operation: string) => SUPPORTED.has(operation),
    // One choice per request, no log probabilities, text out: asking for these is not served silently short.
    lacks: LACKS,
    prepare,
    translateResponse,
    createStreamTranslator,
  });
}

/**
 * The Anthropic dialect with default options (`provider: 'anthropic'`). See {@link createAnthropicDialect}.
 *
 * @example
 * { provider: 'anthropic', url: 'https://api.anthropic.com/v1', apiKey: process.env.ANTHROPIC_API_KEY,
 *   models: ['smart'], modelMap: { smart: 'claude-sonnet-4-5' } }
 */
export const anthropicDialect: Dialect = createAnthropicDialect();
