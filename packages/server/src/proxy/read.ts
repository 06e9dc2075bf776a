// Reading the client's request: validate and scan the body (only what routing needs), the default model, the
// headers forwarded upstream and the `x-lb-*` headers that shape routing.
import { parseTags } from '@lb/core';
import { objectIdsIn, parseFallbackList } from '@lb/exchange';
import { upstreamHeaders } from '../http.js';
import { JSON_OPERATIONS, MODEL_OPERATIONS, multipartField } from '../operations.js';
import { scanBody } from '../scan.js';
import type { Exchange } from './exchange.js';

/** Reads what routing needs from the request into the exchange; false when the request was refused (answered). */
export function readRequest(x: Exchange): boolean {
  const req = x.req;
  const px = x.px;
  const body = x.body;
  const ct = req.headers['content-type'];
  if (body !== undefined) {
    const isJson = ct === undefined || ct.includes('json');
    // Most requests need only `model` and `stream`: a validating scan spares building the body's objects.
    const fields = isJson ? scanBody(body) : undefined;
    if (fields !== undefined) {
      x.model = fields.model;
      x.stream = fields.stream;
      x.featureParams = fields.featureParams;
      x.completionTokens = fields.completionTokens;
      x.streamOptions = fields.streamOptions;
      x.lazyJson = true;
    } else if (isJson) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch (e) {
        if (ct !== undefined || JSON_OPERATIONS.has(x.operation)) {
          x.fail(
            400,
            `We could not parse the JSON body of your request: ${(e as Error).message}`,
            'invalid_json',
          );
          return false;
        }
      }
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        let j = parsed as Record<string, any>;
        if (j.models !== undefined) {
          // OpenRouter's `models: [...]`: the first is the primary, the rest a fallback chain; never forwarded.
          const list = Array.isArray(j.models) ? parseFallbackList(j.models) : undefined;
          if (list === undefined) {
            x.fail(400, '"models" must be a non-empty list of model names', 'invalid_models');
            return false;
          }
          const { models: _, ...rest } = j;
          if (typeof rest.model !== 'string') rest.model = list[0];
          j = rest;
          x.requested = list.filter((m) => m !== rest.model);
          x.body = Buffer.from(JSON.stringify(j));
        }
        x.json = j;
        if (typeof j.model === 'string') x.model = j.model;
        else if (j.model !== undefined) {
          x.fail(400, `"model" must be a string, received ${JSON.stringify(j.model)}`, 'invalid_model');
          return false;
        }
        x.stream = j.stream === true;
      } else if (JSON_OPERATIONS.has(x.operation)) {
        x.fail(400, 'The request body must be a JSON object', 'invalid_request');
        return false;
      }
    } else if (JSON_OPERATIONS.has(x.operation)) {
      x.fail(
        415,
        `Unsupported Content-Type ${JSON.stringify(ct)}: this endpoint expects application/json`,
        'unsupported_media_type',
      );
      return false;
    } else if (ct.startsWith('multipart/form-data')) {
      x.model = multipartField(body, ct, 'model');
    }
  } else if (
    JSON_OPERATIONS.has(x.operation) &&
    req.method === 'POST' &&
    // An action on an object (`POST /batches/{id}/cancel`) takes no body.
    objectIdsIn(x.path, undefined).length === 0
  ) {
    x.fail(400, 'The request body is empty: expected a JSON object', 'invalid_request');
    return false;
  }
  if (x.model === undefined && px.defaultModel !== undefined && MODEL_OPERATIONS.has(x.operation)) {
    x.model = px.defaultModel;
    const json = x.jsonOf();
    if (json) {
      x.json = { ...json, model: px.defaultModel };
      x.body = Buffer.from(JSON.stringify(x.json));
    }
  }
  x.fwd = upstreamHeaders(req.headers);
  const fb = req.headers['x-lb-fallbacks'];
  if (fb !== undefined) {
    const list = parseFallbackList(fb);
    if (list !== undefined) x.requested = [...(x.requested ?? []), ...list];
  }
  const tags = req.headers['x-lb-tags'];
  if (tags !== undefined) x.tags = parseTags(tags);
  return true;
}
