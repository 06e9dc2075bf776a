import { replaceModel, replaceMultipartModel } from '../body.js';
import type { Dialect, DialectRequest, UpstreamRequest } from '../types.js';
import { join, upstreamHeaders } from './shared.js';

function prepare(req: DialectRequest): UpstreamRequest {
  const { endpoint } = req;
  const key = endpoint.apiKey;
  const own: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  const up = req.upstreamModel;
  let body = req.body;
  // The model the client named is the one to send (the common case): the body goes as it came, unread.
  if (up !== undefined && up !== req.model) {
    if (req.json !== undefined) {
      if (req.json.model !== up) body = replaceModel(req.body, req.json, up);
    } else if (req.model !== undefined && req.model !== up) {
      // multipart (audio transcriptions, image edits): splice the model field, copy the file parts
      body = replaceMultipartModel(req.body, req.headers['content-type'], up);
    }
  }
  return {
    url: join(endpoint.url, req.path),
    method: req.method,
    headers: upstreamHeaders(req, own, false),
    body,
  };
}

/**
 * The OpenAI wire format, for every OpenAI-compatible server (OpenAI, OpenRouter, vLLM, Ollama, DeepSeek, LiteLLM,
 * proxies): `{endpoint.url}{path}` with `Authorization: Bearer <apiKey>`, body passed through byte for byte (only
 * the model is spliced when the endpoint maps it), answers and streams passed through. Supports every operation.
 * The default for endpoints without a `provider`.
 *
 * @example
 * createRouter({ endpoints: [{ url: 'https://openrouter.ai/api/v1', apiKey: process.env.OPENROUTER_API_KEY }] });
 */
export const openaiDialect: Dialect = Object.freeze({
  name: 'openai',
  supports: (_operation: string) => true,
  prepare,
});
