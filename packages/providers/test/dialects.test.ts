import { Endpoint } from '@lb/core';
import { runDialectContract } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import {
  AZURE_DEFAULT_API_VERSION,
  anthropicDialect,
  azureDialect,
  dialectNames,
  getDialect,
  isProviderError,
  openaiDialect,
  operationOf,
  registerDialect,
  replaceModel,
  replaceMultipartModel,
  stripHopByHop,
} from '../src/index.js';
import { utf8 } from '../src/internal.js';
import { chatRequest, KEY, text } from './helpers.js';

const openaiEp = new Endpoint({ id: 'oa', url: 'https://api.openai.com/v1', apiKey: KEY });
const azureEp = (meta: Record<string, unknown> = {}, url = 'https://my-res.openai.azure.com') =>
  new Endpoint({ id: 'az', url, apiKey: KEY, provider: 'azure', meta });

runDialectContract({ dialect: openaiDialect, endpoint: openaiEp });
runDialectContract({ dialect: azureDialect, endpoint: azureEp({ apiVersion: 'v1' }) });
runDialectContract({
  dialect: anthropicDialect,
  endpoint: new Endpoint({ url: 'https://api.anthropic.com/v1', apiKey: KEY, provider: 'anthropic' }),
});

describe('openai dialect', () => {
  it('joins the path, sends the bearer key, and passes the body bytes through untouched', () => {
    const req = chatRequest(openaiEp, { model: 'gpt-4o', messages: [] });
    const up = openaiDialect.prepare(req);
    expect(up.url).toBe('https://api.openai.com/v1/chat/completions');
    expect(up.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(up.body).toBe(req.body);
    expect(openaiDialect.supports('embeddings')).toBe(true);
  });

  it('splices a mapped model into the body', () => {
    const req = chatRequest(
      openaiEp,
      { model: 'gpt-4o', messages: [] },
      { upstreamModel: 'gpt-4o-2024-08-06' },
    );
    expect(JSON.parse(text(openaiDialect.prepare(req).body))).toEqual({
      model: 'gpt-4o-2024-08-06',
      messages: [],
    });
  });

  it('keeps the query and sends no auth header without a key', () => {
    const ep = new Endpoint({ url: 'http://127.0.0.1:11434/v1' });
    const up = openaiDialect.prepare({
      ...chatRequest(ep, {}),
      method: 'GET',
      path: '/models?limit=2',
      body: undefined,
      json: undefined,
    });
    expect(up.url).toBe('http://127.0.0.1:11434/v1/models?limit=2');
    expect(up.headers.authorization).toBeUndefined();
  });
});

describe('azure dialect', () => {
  it('deployment URL, api-version, api-key header; body untouched', () => {
    const req = chatRequest(azureEp({ deployments: { 'gpt-4o': 'prod-4o' } }), {
      model: 'gpt-4o',
      messages: [],
    });
    const up = azureDialect.prepare(req);
    expect(up.url).toBe(
      `https://my-res.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=${AZURE_DEFAULT_API_VERSION}`,
    );
    expect(up.headers['api-key']).toBe(KEY);
    expect(up.headers.authorization).toBeUndefined();
    expect(up.body).toBe(req.body);
  });

  it('defaults the deployment to the upstream model, keeps the query, accepts a URL ending in /openai', () => {
    const ep = azureEp({ apiVersion: '2025-04-01-preview' }, 'https://my-res.openai.azure.com/openai');
    const req = {
      ...chatRequest(ep, { model: 'gpt-4o', input: 'x' }, { upstreamModel: 'text-embedding-3-small' }),
      operation: 'embeddings',
      path: '/embeddings?x=1',
    };
    expect(azureDialect.prepare(req).url).toBe(
      'https://my-res.openai.azure.com/openai/deployments/text-embedding-3-small/embeddings?api-version=2025-04-01-preview&x=1',
    );
  });

  it('Entra ID bearer auth', () => {
    const up = azureDialect.prepare(
      chatRequest(azureEp({ auth: 'bearer' }), { model: 'gpt-4o', messages: [] }),
    );
    expect(up.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(up.headers['api-key']).toBeUndefined();
  });

  it('non-deployment operations go under /openai', () => {
    const req = {
      ...chatRequest(azureEp(), {}),
      operation: 'files',
      method: 'GET',
      path: '/files',
      body: undefined,
      json: undefined,
    };
    expect(azureDialect.prepare(req).url).toBe(
      `https://my-res.openai.azure.com/openai/files?api-version=${AZURE_DEFAULT_API_VERSION}`,
    );
  });

  it('v1 API: OpenAI paths under /openai/v1, the deployment as the body model', () => {
    const req = chatRequest(azureEp({ apiVersion: 'v1', deployments: { smart: 'prod-4o' } }), {
      model: 'smart',
      messages: [],
    });
    const up = azureDialect.prepare(req);
    expect(up.url).toBe('https://my-res.openai.azure.com/openai/v1/chat/completions');
    expect(JSON.parse(text(up.body)).model).toBe('prod-4o');
  });

  it('has no moderations', () => {
    expect(azureDialect.supports('moderations')).toBe(false);
    expect(azureDialect.supports('chat.completions')).toBe(true);
  });

  it('validates meta, naming the field and the received value', () => {
    expect(() => azureDialect.prepare(chatRequest(azureEp({ auth: 'basic' }), { model: 'm' }))).toThrow(
      /meta.auth.*"basic"/,
    );
    expect(() => azureDialect.prepare(chatRequest(azureEp({ apiVersion: 5 }), { model: 'm' }))).toThrow(
      /meta.apiVersion.*5/,
    );
    expect(() =>
      azureDialect.prepare(chatRequest(azureEp({ deployments: { m: 3 } }), { model: 'm' })),
    ).toThrow(/deployments\["m"\].*3/);
  });
});

describe('replaceModel', () => {
  const cases: [string, string, string][] = [
    ['{"model":"a","messages":[]}', 'b', '{"model":"b","messages":[]}'],
    [
      '{ "messages": [{"model":"nested"}], "model" : "a" , "n":1}',
      'b',
      '{ "messages": [{"model":"nested"}], "model" : "b" , "n":1}',
    ],
    ['{"x":"\\"model\\":\\"no\\"","model":"a"}', 'b', '{"x":"\\"model\\":\\"no\\"","model":"b"}'],
    ['{"model":"a\\"q","z":"ü"}', 'é"', '{"model":"é\\"","z":"ü"}'],
    ['\n {"meta":{"model":"x"},"model":"a"}', 'b', '\n {"meta":{"model":"x"},"model":"b"}'],
  ];
  it.each(cases)('%s → %s', (input, model, expected) => {
    const out = replaceModel(utf8(input), JSON.parse(input), model);
    expect(text(out)).toBe(expected);
  });

  it('returns the same bytes when the model is unchanged, and serialises only without a splice point', () => {
    const body = utf8('{"model":"a"}');
    expect(replaceModel(body, { model: 'a' }, 'a')).toBe(body);
    expect(JSON.parse(text(replaceModel(utf8('{"n":1}'), { n: 1 }, 'b')))).toEqual({ n: 1, model: 'b' });
    expect(replaceModel(undefined, undefined, 'b')).toBeUndefined();
  });
});

describe('stripHopByHop', () => {
  it('drops hop-by-hop headers, the ones connection names, and credentials; lower-cases; joins arrays', () => {
    const out = stripHopByHop({
      Connection: 'keep-alive, X-Trace',
      'x-trace': '1',
      'Keep-Alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      host: 'gw',
      Authorization: 'Bearer client',
      'api-key': 'k',
      'X-Api-Key': 'k',
      'Content-Type': 'application/json',
      accept: ['a', 'b'],
      'x-undefined': undefined,
    });
    expect(out).toEqual({ 'content-type': 'application/json', accept: 'a, b' });
  });

  it('keeps credentials on request and reads WHATWG Headers', () => {
    const h = new Headers({ authorization: 'Bearer x', te: 'trailers', 'content-length': '3' });
    expect(stripHopByHop(h, { credentials: false })).toEqual({
      authorization: 'Bearer x',
      'content-length': '3',
    });
    expect(stripHopByHop(h, { contentLength: true })).toEqual({});
  });
});

describe('operationOf', () => {
  const table: [string, string, string][] = [
    ['POST', '/chat/completions', 'chat.completions'],
    ['POST', '/v1/chat/completions?x=1', 'chat.completions'],
    ['POST', '/completions', 'completions'],
    ['POST', '/embeddings', 'embeddings'],
    ['GET', '/models', 'models.list'],
    ['GET', '/v1/models/', 'models.list'],
    ['GET', '/models/gpt-4o', 'models.retrieve'],
    ['POST', '/images/generations', 'images.generations'],
    ['POST', '/images/edits', 'images.edits'],
    ['POST', '/audio/speech', 'audio.speech'],
    ['POST', '/audio/transcriptions', 'audio.transcriptions'],
    ['POST', '/audio/translations', 'audio.translations'],
    ['POST', '/moderations', 'moderations'],
    ['POST', '/responses', 'responses'],
    ['GET', '/responses/resp_1', 'responses'],
    ['POST', '/files', 'files'],
    ['GET', '/files/file-1/content', 'files'],
    ['POST', '/batches', 'batches'],
    ['GET', '/something/else', 'other'],
    ['POST', '/models', 'other'],
  ];
  it.each(table)('%s %s → %s', (m, p, op) => {
    expect(operationOf(m, p)).toBe(op);
  });
});

describe('registry', () => {
  it('knows the built-ins and aliases, and names them when asked for an unknown one', () => {
    expect(dialectNames()).toEqual(expect.arrayContaining(['openai', 'azure', 'anthropic']));
    expect(getDialect('openai')).toBe(openaiDialect);
    expect(getDialect('claude')).toBe(anthropicDialect);
    let err: unknown;
    try {
      getDialect('bedrock');
    } catch (e) {
      err = e;
    }
    expect(isProviderError(err)).toBe(true);
    expect((err as Error).message).toMatch(/Unknown provider "bedrock".*"openai", "azure", "anthropic"/);
    expect((err as any).toOpenAIError().error.code).toBe('unknown_provider');
  });

  it('registers a user dialect (which runs the contract below) and restores on dispose', () => {
    const off = registerDialect(customDialect);
    expect(getDialect('custom')).toBe(customDialect);
    off();
    expect(() => getDialect('custom')).toThrow(/Unknown provider "custom"/);
    expect(() => registerDialect({ name: '', supports: () => true, prepare: () => ({}) as any })).toThrow(
      /received ""/,
    );
  });
});

const customDialect = {
  name: 'custom',
  supports: (op: string) => op === 'chat.completions',
  prepare: (req: any) => ({
    url: `${req.endpoint.url}/generate`,
    method: 'POST',
    headers: { 'x-custom-key': req.endpoint.apiKey },
    body: JSON.stringify({ model: req.upstreamModel, prompt: req.json.messages }),
  }),
};
runDialectContract({
  dialect: customDialect,
  endpoint: new Endpoint({ url: 'https://custom.example', apiKey: KEY, provider: 'custom' }),
});

describe('multipart model rewrite', () => {
  const boundary = '----formdata-undici-0123';
  const form = (model: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF\u0000\u0001name="model"\r\n\r\nnot-a-field\r\n--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\n${model}\r\n--${boundary}--\r\n`;

  it('splices the model field of an audio transcription and copies the file part', () => {
    const out = replaceMultipartModel(
      utf8(form('whisper-1')),
      `multipart/form-data; boundary=${boundary}`,
      'whisper-large-v3',
    );
    expect(text(out)).toBe(form('whisper-large-v3'));
    expect(text(out)).toContain('not-a-field');
  });

  it('the openai dialect uses it for mapped multipart requests', () => {
    const ep = new Endpoint({
      url: 'https://groq.example/openai/v1',
      apiKey: KEY,
      modelMap: { 'whisper-1': 'whisper-large-v3' },
    });
    const req = {
      ...chatRequest(ep, {}),
      operation: 'audio.transcriptions',
      path: '/audio/transcriptions',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: utf8(form('whisper-1')),
      json: undefined,
      model: 'whisper-1',
      upstreamModel: 'whisper-large-v3',
    };
    expect(text(openaiDialect.prepare(req).body)).toContain('name="model"\r\n\r\nwhisper-large-v3\r\n');
  });

  it('leaves bodies without a model field or with another content type alone', () => {
    const body = utf8('plain');
    expect(replaceMultipartModel(body, 'text/plain', 'x')).toBe(body);
    expect(replaceMultipartModel(body, `multipart/form-data; boundary=${boundary}`, 'x')).toBe(body);
  });
});
