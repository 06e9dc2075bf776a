import type { Endpoint, Usage } from '@lb/core';

/**
 * What a call is, derived from its method and path by {@link operationOf}. Guards, metrics and dialects key on it.
 * Dialects must accept any string (`'other'` and future names included) and answer `supports()` for it.
 */
export type Operation =
  | 'chat.completions'
  | 'completions'
  | 'embeddings'
  | 'models.list'
  | 'models.retrieve'
  | 'images.generations'
  | 'images.edits'
  | 'images.variations'
  | 'audio.speech'
  | 'audio.transcriptions'
  | 'audio.translations'
  | 'moderations'
  | 'responses'
  | 'files'
  | 'batches'
  | 'other';

/** One client call in OpenAI's format, bound to the endpoint chosen for this attempt. Read-only for dialects. */
export interface DialectRequest {
  /** The endpoint of this attempt (`endpoint.provider` names the dialect). */
  endpoint: Endpoint;
  /** See {@link Operation}. */
  operation: string;
  /** HTTP method, upper-case. */
  method: string;
  /** OpenAI path after the base URL, starting with `/`, query included: `/chat/completions`, `/models?limit=2`. */
  path: string;
  /** Client headers, lower-case keys, already stripped of hop-by-hop and auth headers (see {@link stripHopByHop}). */
  headers: Record<string, string>;
  /** Raw body as received (never re-read, never mutated). */
  body: Uint8Array | undefined;
  /** Parsed JSON body when the body is JSON (read-only). */
  json: Record<string, any> | undefined;
  /** Model to send upstream, after the endpoint's / model group's mapping. */
  upstreamModel: string | undefined;
  /** The client asked for a streamed answer. */
  stream: boolean;
  /** Optional: the exposed model name the client asked for (Azure looks deployments up by it first). */
  model?: string;
}

/** The request to send upstream: what a transport (undici, fetch) needs, nothing more. */
export interface UpstreamRequest {
  url: string;
  method: string;
  /** Lower-case keys. Carries the endpoint's credentials: never log it. */
  headers: Record<string, string>;
  body: Uint8Array | string | undefined;
}

/** An upstream answer rewritten into OpenAI's format. */
export interface TranslatedResponse {
  /** Kept from upstream (so classification, failover and cooldowns see the provider's real verdict). */
  status: number;
  /** Lower-case keys; `content-length`/`content-encoding` dropped when the body changed. */
  headers: Record<string, string>;
  body: Uint8Array | string;
}

/** Failure signalled inside a stream (an SSE `error` event). `status` is the HTTP status the same error has as a response. */
export interface StreamFailure {
  status: number;
  /** Provider error type, e.g. `overloaded_error`, `rate_limit_error`. */
  type: string;
  message: string;
}

/**
 * Rewrites an upstream SSE stream into OpenAI `chat.completion.chunk` SSE, event by event.
 * Feed decoded text as it arrives (any split, even mid-line); each call returns the OpenAI SSE text ready so far
 * (`''` when nothing yet). Call `end()` once when the upstream ended.
 */
export interface StreamTranslator {
  push(text: string): string;
  end(): string;
  /**
   * Set once the upstream sent an error event. When it is set and nothing was written to the client yet, a gateway
   * should treat the attempt as failed with `error.status` (so it fails over) instead of streaming the error.
   */
  readonly error?: StreamFailure | undefined;
  /** Token usage once the upstream reported it (for `ctx.reportUsage`). */
  readonly usage?: Usage | undefined;
}

/**
 * A provider dialect: how to speak to one kind of upstream while clients speak OpenAI's format.
 * Register your own with {@link registerDialect}; run `runDialectContract` from the test utilities against it.
 *
 * @example
 * const myDialect: Dialect = {
 *   name: 'my-provider',
 *   supports: (op) => op === 'chat.completions',
 *   prepare: (req) => ({
 *     url: req.endpoint.url + req.path,
 *     method: req.method,
 *     headers: { ...req.headers, authorization: `Bearer ${req.endpoint.apiKey}` },
 *     body: req.body,
 *   }),
 * };
 * registerDialect(myDialect);
 */
export interface Dialect {
  readonly name: string;
  /** Whether this provider can serve the operation at all (see {@link Operation}). Pure and cheap. */
  supports(operation: string): boolean;
  /**
   * Request features (see `requestFeatures`) this provider cannot honour: requests asking for one are kept on other
   * endpoints, or answered 400 `unsupported_parameter` when no endpoint can. Absent: it honours them all.
   */
  readonly lacks?: readonly string[];
  /** Builds the upstream request: URL, auth header, body (the model rewritten only when it differs). */
  prepare(req: DialectRequest): UpstreamRequest;
  /**
   * Rewrites a complete (non-streamed, or error) upstream answer into OpenAI's format. Absent: pass through.
   * Gateways call it for every non-streamed answer and for error answers to streamed requests.
   */
  translateResponse?(
    status: number,
    headers: Record<string, string>,
    body: Uint8Array,
    req: DialectRequest,
  ): TranslatedResponse;
  /** A translator for one streamed 2xx answer. Absent: pass the bytes through. */
  createStreamTranslator?(req: DialectRequest): StreamTranslator;
}
