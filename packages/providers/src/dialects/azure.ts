import { ConfigError, type Endpoint } from '@lb/core';
import { replaceModel } from '../body.js';
import type { Dialect, DialectRequest, UpstreamRequest } from '../types.js';
import { upstreamHeaders } from './shared.js';

/** Default Azure OpenAI `api-version` (the current GA data-plane version). Override per endpoint with `meta.apiVersion`. */
export const AZURE_DEFAULT_API_VERSION = '2024-10-21';

/** Operations Azure serves under `/openai/deployments/{deployment}/…` in the versioned API. */
const DEPLOYMENT_OPS = new Set([
  'chat.completions',
  'completions',
  'embeddings',
  'images.generations',
  'images.edits',
  'images.variations',
  'audio.speech',
  'audio.transcriptions',
  'audio.translations',
]);

/** An Azure endpoint's settings, read from `endpoint.meta` (validated once per endpoint object, then cached). */
interface AzureSettings {
  base: string;
  apiVersion: string;
  v1: boolean;
  bearer: boolean;
  deployments: Readonly<Record<string, string>>;
}

const cache = new WeakMap<Endpoint, AzureSettings>();

/**
 * Reads and validates the Azure settings of an endpoint (`meta.apiVersion`, `meta.deployments`, `meta.auth`).
 * Throws a `ConfigError` naming the endpoint, the field and the received value.
 */
export function azureSettings(endpoint: Endpoint): AzureSettings {
  let s = cache.get(endpoint);
  if (s) return s;
  const meta = endpoint.meta;
  const where = `endpoint ${JSON.stringify(endpoint.id)}`;
  const apiVersion = meta.apiVersion ?? AZURE_DEFAULT_API_VERSION;
  if (typeof apiVersion !== 'string' || apiVersion.length === 0) {
    throw new ConfigError(
      `${where}: meta.apiVersion must be a non-empty string, received ${JSON.stringify(apiVersion)}`,
    );
  }
  const auth = meta.auth ?? 'api-key';
  if (auth !== 'api-key' && auth !== 'bearer') {
    throw new ConfigError(
      `${where}: meta.auth must be 'api-key' or 'bearer', received ${JSON.stringify(auth)}`,
    );
  }
  const deployments = (meta.deployments ?? {}) as Record<string, unknown>;
  if (typeof deployments !== 'object' || deployments === null || Array.isArray(deployments)) {
    throw new ConfigError(
      `${where}: meta.deployments must map model names to deployment names, received ${JSON.stringify(deployments)}`,
    );
  }
  for (const k in deployments) {
    if (typeof deployments[k] !== 'string' || !deployments[k]) {
      throw new ConfigError(
        `${where}: meta.deployments[${JSON.stringify(k)}] must be a deployment name, received ${JSON.stringify(deployments[k])}`,
      );
    }
  }
  // Accept the resource URL with or without a trailing /openai or /openai/v1.
  const base = endpoint.url.replace(/\/openai(\/v1)?$/, '');
  s = {
    base,
    apiVersion,
    v1: apiVersion === 'v1' || /\/openai\/v1$/.test(endpoint.url),
    bearer: auth === 'bearer',
    deployments: deployments as Record<string, string>,
  };
  cache.set(endpoint, s);
  return s;
}

/** The Azure deployment for a request: `meta.deployments[exposed model]`, `[upstream model]`, else the upstream model. */
export function azureDeployment(req: DialectRequest): string | undefined {
  const s = azureSettings(req.endpoint);
  const exposed = req.model ?? (typeof req.json?.model === 'string' ? (req.json.model as string) : undefined);
  const up = req.upstreamModel ?? exposed;
  return (
    (exposed !== undefined ? s.deployments[exposed] : undefined) ??
    (up !== undefined ? s.deployments[up] : undefined) ??
    up
  );
}

function prepare(req: DialectRequest): UpstreamRequest {
  const s = azureSettings(req.endpoint);
  const key = req.endpoint.apiKey;
  const own: Record<string, string> = key
    ? s.bearer
      ? { authorization: `Bearer ${key}` }
      : { 'api-key': key }
    : {};
  const headers = upstreamHeaders(req, own, false);
  const q = req.path.indexOf('?');
  const path = q < 0 ? req.path : req.path.slice(0, q);
  const query = q < 0 ? '' : req.path.slice(q + 1);
  if (s.v1) {
    // v1 API: OpenAI's paths; the body's model names the deployment.
    const dep = azureDeployment(req);
    const body =
      dep !== undefined && req.json !== undefined && req.json.model !== dep
        ? replaceModel(req.body, req.json, dep)
        : req.body;
    return { url: `${s.base}/openai/v1${req.path}`, method: req.method, headers, body };
  }
  const version = `api-version=${encodeURIComponent(s.apiVersion)}${query ? `&${query}` : ''}`;
  if (DEPLOYMENT_OPS.has(req.operation)) {
    const dep = azureDeployment(req);
    if (dep !== undefined) {
      return {
        url: `${s.base}/openai/deployments/${encodeURIComponent(dep)}${path}?${version}`,
        method: req.method,
        headers,
        body: req.body,
      };
    }
  }
  return { url: `${s.base}/openai${path}?${version}`, method: req.method, headers, body: req.body };
}

/**
 * Azure OpenAI. `endpoint.url` is the resource URL (`https://my-resource.openai.azure.com`); per endpoint `meta`:
 *
 * | meta          | default        | meaning                                                                   |
 * | ------------- | -------------- | ------------------------------------------------------------------------- |
 * | `deployments` | `{}`           | model name (exposed or upstream) → deployment name; default: the model   |
 * | `apiVersion`  | `'2024-10-21'` | `api-version` query; `'v1'` selects the v1 API (`/openai/v1/…`)           |
 * | `auth`        | `'api-key'`    | `'api-key'` sends the key as `api-key`; `'bearer'` as an Entra ID token   |
 *
 * Answers are OpenAI's format already: passed through. Azure has no moderations endpoint.
 *
 * @example
 * { provider: 'azure', url: 'https://my-resource.openai.azure.com', apiKey: process.env.AZURE_OPENAI_API_KEY,
 *   meta: { deployments: { 'gpt-4o': 'prod-gpt4o' }, apiVersion: '2024-10-21' } }
 */
export const azureDialect: Dialect = Object.freeze({
  name: 'azure',
  supports: (operation: string) => operation !== 'moderations',
  prepare,
});
