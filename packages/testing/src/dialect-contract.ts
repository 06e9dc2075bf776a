import type { Endpoint } from '@lb/core';
import type { Dialect, DialectRequest } from '@lb/providers';
import { describe, expect, it } from 'vitest';

const OPERATIONS = [
  'chat.completions',
  'completions',
  'embeddings',
  'models.list',
  'models.retrieve',
  'images.generations',
  'audio.speech',
  'audio.transcriptions',
  'audio.translations',
  'moderations',
  'responses',
  'files',
  'batches',
  'other',
];

/**
 * The contract every provider dialect runs (built-ins and users' own), hono-router style:
 * `runDialectContract({ dialect: myDialect, endpoint: new Endpoint({ url, apiKey, provider: 'mine' }) })`.
 * `endpoint` must carry an `apiKey` of at least 16 characters.
 */
export function runDialectContract(opts: { dialect: Dialect; endpoint: Endpoint; model?: string }): void {
  const apiKey = opts.endpoint.apiKey ?? '';
  if (apiKey.length < 16)
    throw new TypeError(
      `runDialectContract: the endpoint needs an apiKey of 16 characters or more, received ${apiKey.length}`,
    );
  const { dialect, endpoint } = opts;
  const model = opts.model ?? 'some-model';
  const chat = (
    over: Record<string, unknown> = {},
  ): DialectRequest & { body: Uint8Array; upstreamModel: string } => {
    const json = { model, messages: [{ role: 'user', content: 'hi' }], ...over };
    return {
      endpoint,
      operation: 'chat.completions',
      method: 'POST',
      path: '/chat/completions',
      headers: { 'content-type': 'application/json', 'x-client': 'yes' },
      body: new TextEncoder().encode(JSON.stringify(json)),
      json,
      upstreamModel: model,
      stream: over.stream === true,
      model,
    };
  };
  describe(`dialect contract: ${dialect.name}`, () => {
    it('has a non-empty name and answers supports() with a boolean for every operation', () => {
      expect(typeof dialect.name).toBe('string');
      expect(dialect.name.length).toBeGreaterThan(0);
      for (const op of OPERATIONS) expect(typeof dialect.supports(op)).toBe('boolean');
      expect(typeof dialect.supports('some.future.operation')).toBe('boolean');
    });
    it('supports chat completions', () => {
      expect(dialect.supports('chat.completions')).toBe(true);
    });
    it('prepares an absolute http(s) URL under the endpoint, with the method and a body', () => {
      const up = dialect.prepare(chat());
      const u = new URL(up.url);
      expect(['http:', 'https:']).toContain(u.protocol);
      expect(u.host).toBe(new URL(endpoint.url).host);
      expect(up.method).toBe('POST');
      expect(up.body).toBeDefined();
    });
    it('sends the key upstream in some header, never in the URL, and never forwards content-length or host', () => {
      const req = chat();
      req.headers = { ...req.headers, 'content-length': '999', host: 'gateway.local' };
      const up = dialect.prepare(req);
      expect(Object.values(up.headers)).toEqual(expect.arrayContaining([expect.stringContaining(apiKey)]));
      expect(up.url).not.toContain(apiKey);
      expect(up.headers['content-length']).toBeUndefined();
      expect(up.headers.host).toBeUndefined();
      for (const k of Object.keys(up.headers)) expect(k).toBe(k.toLowerCase());
    });
    it('does not mutate the request it is given', () => {
      const req = chat({ temperature: 0.5 });
      const before = JSON.stringify({ ...req, endpoint: undefined, body: [...req.body] });
      dialect.prepare(req);
      expect(JSON.stringify({ ...req, endpoint: undefined, body: [...req.body] })).toBe(before);
    });
    it('sends the upstream model', () => {
      const req = chat();
      req.upstreamModel = 'mapped-model-name';
      const up = dialect.prepare(req);
      const text = typeof up.body === 'string' ? up.body : new TextDecoder().decode(up.body as Uint8Array);
      expect(`${up.url} ${text}`).toContain('mapped-model-name');
    });
    if (dialect.translateResponse) {
      it('keeps the status of error answers and renders them in OpenAI error shape without the key', () => {
        for (const status of [400, 401, 429, 500, 503, 529]) {
          const body = new TextEncoder().encode(
            JSON.stringify({
              type: 'error',
              error: { type: 'api_error', message: `boom ${apiKey}` },
            }),
          );
          const out = dialect.translateResponse!(
            status,
            { 'content-type': 'application/json' },
            body,
            chat(),
          );
          expect(out.status).toBe(status);
          const text = typeof out.body === 'string' ? out.body : new TextDecoder().decode(out.body);
          const parsed = JSON.parse(text);
          expect(typeof parsed.error.message).toBe('string');
          expect(text).not.toContain(apiKey);
        }
      });
    }
    if (dialect.createStreamTranslator) {
      it('stream translators return strings and tolerate empty input', () => {
        const t = dialect.createStreamTranslator!(chat({ stream: true }));
        expect(t.push('')).toBe('');
        expect(typeof t.end()).toBe('string');
      });
    }
  });
}
