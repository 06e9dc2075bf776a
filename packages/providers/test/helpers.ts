import { readFileSync } from 'node:fs';
import { Endpoint, type EndpointConfig } from '@lb/core';
import type { DialectRequest } from '../src/index.js';

const dir = new URL('./fixtures/', import.meta.url);

export function fixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as T;
}

export function fixtureText(name: string): string {
  return readFileSync(new URL(name, dir), 'utf8');
}

export const KEY = 'sk-ant-api03-test-key-0123456789abcdefXYZW';

export function endpoint(config: Partial<EndpointConfig> = {}): Endpoint {
  return new Endpoint({
    id: 'ep',
    url: 'https://api.anthropic.com/v1',
    apiKey: KEY,
    provider: 'anthropic',
    ...config,
  });
}

/** A chat completion request in OpenAI's format, as a gateway hands it to a dialect. */
export function chatRequest(
  ep: Endpoint,
  json: Record<string, any>,
  over: Partial<DialectRequest> = {},
): DialectRequest {
  return {
    endpoint: ep,
    operation: 'chat.completions',
    method: 'POST',
    path: '/chat/completions',
    headers: { 'content-type': 'application/json', 'user-agent': 'OpenAI/JS 6.0.0' },
    body: new TextEncoder().encode(JSON.stringify(json)),
    json,
    upstreamModel: json.model,
    stream: json.stream === true,
    model: json.model,
    ...over,
  };
}

export function text(body: Uint8Array | string | undefined): string {
  return typeof body === 'string' ? body : new TextDecoder().decode(body);
}

/** Splits text into pieces of pseudo-random sizes (deterministic per seed). */
export function split(s: string, seed: number): string[] {
  const out: string[] = [];
  let x = seed;
  let i = 0;
  while (i < s.length) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const n = 1 + (x % 23);
    out.push(s.slice(i, i + n));
    i += n;
  }
  return out;
}
