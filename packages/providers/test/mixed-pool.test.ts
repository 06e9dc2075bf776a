import { classify, createRouter, type Router } from '@lb/core';
import { collectEvents, fakeKey, startFakeAnthropic, startFakeUpstream } from '@lb/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DialectRequest,
  explainUnservable,
  getDialect,
  operationOf,
  providerGuard,
  type TranslatedResponse,
} from '../src/index.js';
import { utf8 } from '../src/internal.js';

type Fake = Awaited<ReturnType<typeof startFakeUpstream>>;
type FakeA = Awaited<ReturnType<typeof startFakeAnthropic>>;
const OAI_KEY = fakeKey('openai');
const ANT_KEY = fakeKey('anthropic');

/** A minimal gateway over the router and the dialects, the way @lb/server and the adapter use them. */
async function call(router: Router, path: string, json: Record<string, any>): Promise<TranslatedResponse> {
  const operation = operationOf('POST', path);
  return router.execute({ model: json.model, operation }, async (ctx) => {
    const dialect = getDialect(ctx.endpoint.provider);
    const req: DialectRequest = {
      endpoint: ctx.endpoint,
      operation,
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: utf8(JSON.stringify(json)),
      json,
      upstreamModel: ctx.upstreamModel,
      stream: json.stream === true,
      model: json.model,
    };
    const up = dialect.prepare(req);
    const res = await fetch(up.url, {
      method: up.method,
      headers: up.headers,
      body: up.body as BodyInit | undefined,
      signal: ctx.signal,
    });
    const headers = Object.fromEntries(res.headers);
    if (req.stream && res.ok && res.body) {
      const t = dialect.createStreamTranslator?.(req);
      const decoder = new TextDecoder();
      let out = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        const piece = decoder.decode(chunk, { stream: true });
        const translated = t ? t.push(piece) : piece;
        // Before the first byte reaches the client, an upstream error event is a failed attempt: fail over.
        if (t?.error && out === '') return { status: t.error.status, headers: {}, body: translated };
        out += translated;
      }
      return { status: res.status, headers, body: out + (t ? t.end() : '') };
    }
    const body = new Uint8Array(await res.arrayBuffer());
    return dialect.translateResponse
      ? dialect.translateResponse(res.status, headers, body, req)
      : { status: res.status, headers, body };
  });
}

const parse = (r: TranslatedResponse) =>
  JSON.parse(typeof r.body === 'string' ? r.body : new TextDecoder().decode(r.body));

describe('mixed pool: OpenAI-compatible + Anthropic behind one model name', () => {
  let oai: Fake;
  let ant: FakeA;
  beforeAll(async () => {
    [oai, ant] = await Promise.all([
      startFakeUpstream({ name: 'oai', acceptKeys: [OAI_KEY] }),
      startFakeAnthropic({ acceptKeys: [ANT_KEY] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([oai.close(), ant.close()]);
  });

  const router = (anthropicFirst = false) => {
    const r = createRouter({
      endpoints: [
        {
          id: 'oai',
          url: oai.url,
          apiKey: OAI_KEY,
          models: ['smart'],
          modelMap: { smart: 'gpt-4o' },
          priority: anthropicFirst ? 2 : 1,
        },
        {
          id: 'claude',
          url: ant.url,
          apiKey: ANT_KEY,
          provider: 'anthropic',
          models: ['smart'],
          modelMap: { smart: 'claude-sonnet-4-5' },
          priority: anthropicFirst ? 1 : 2,
        },
      ],
      backoff: { initialMs: 1, maxMs: 1 },
    });
    r.addGuard(providerGuard());
    return r;
  };

  it('the OpenAI endpoint fails (500): Anthropic answers in OpenAI format', async () => {
    const r = router();
    const { events } = collectEvents(r, ['attempt:failure']);
    oai.next({ type: 'status', status: 500 });
    const res = await call(r, '/chat/completions', {
      model: 'smart',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
    });
    expect(res.status).toBe(200);
    const body = parse(res);
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0].message).toMatchObject({ role: 'assistant', content: 'Hello from Claude' });
    expect(body.choices[0].finish_reason).toBe('stop');
    expect(body.usage.total_tokens).toBeGreaterThan(0);
    expect(events.map((e) => [e.payload.endpointId, e.payload.status])).toEqual([['oai', 500]]);
    const sent = ant.requests.at(-1)!;
    expect(sent.json).toMatchObject({ model: 'claude-sonnet-4-5', system: 'Be brief.', max_tokens: 4096 });
    expect(sent.headers['x-api-key']).toBe(ANT_KEY);
  });

  it('streaming: the OpenAI endpoint fails (503), Anthropic streams chat.completion.chunk SSE ending in [DONE]', async () => {
    const r = router();
    oai.next({ type: 'status', status: 503 });
    ant.next({ type: 'ok', chunks: ['Hel', 'lo', ' there'] });
    const res = await call(r, '/chat/completions', {
      model: 'smart',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(res.status).toBe(200);
    const events = String(res.body).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('Hello there');
    expect(chunks.at(-2).choices[0].finish_reason).toBe('stop');
    expect(chunks.at(-1).usage.completion_tokens).toBe(3);
  });

  it('streamed tool calls arrive as OpenAI tool_call deltas', async () => {
    const r = router(true);
    ant.next({ type: 'tool', name: 'get_weather', input: { location: 'Paris' } });
    const res = await call(r, '/chat/completions', {
      model: 'smart',
      stream: true,
      tools: [
        {
          type: 'function',
          function: { name: 'get_weather', parameters: { type: 'object', properties: {} } },
        },
      ],
      messages: [{ role: 'user', content: 'Weather?' }],
    });
    const chunks = String(res.body)
      .split('\n\n')
      .filter((e) => e && e !== 'data: [DONE]')
      .map((e) => JSON.parse(e.slice(6)));
    const calls = chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    expect(calls[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather' } });
    expect(JSON.parse(calls.map((c) => c.function.arguments).join(''))).toEqual({ location: 'Paris' });
    expect(chunks.at(-1).choices[0].finish_reason).toBe('tool_calls');
  });

  it('Anthropic overloaded (529) fails over to OpenAI and counts as a server fault', async () => {
    const r = router(true);
    const { events } = collectEvents(r, ['attempt:failure']);
    ant.next({ type: 'error', status: 529, errorType: 'overloaded_error', message: 'Overloaded' });
    const res = await call(r, '/chat/completions', {
      model: 'smart',
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(parse(res).system_fingerprint).toBe('oai');
    expect(events[0].payload).toMatchObject({
      endpointId: 'claude',
      status: 529,
      kind: 'server',
      countsForBreaker: true,
    });
    expect(oai.requests.at(-1)!.json.model).toBe('gpt-4o');
  });

  it('Anthropic rate limit (429, retry-after) cools the endpoint for that long and fails over', async () => {
    const r = router(true);
    ant.next({ type: 'error', status: 429, errorType: 'rate_limit_error', headers: { 'retry-after': '30' } });
    const res = await call(r, '/chat/completions', {
      model: 'smart',
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(res.status).toBe(200);
    const health = r.getHealth('claude')!;
    expect(health.status).toBe('cooling');
    expect(health.status === 'cooling' && health.until - Date.now()).toBeGreaterThan(25_000);
  });

  it('an SSE error event first in a 200 stream fails over before any byte', async () => {
    const r = router(true);
    const { events } = collectEvents(r, ['attempt:failure']);
    ant.next({ type: 'stream-error', errorType: 'overloaded_error' });
    const res = await call(r, '/chat/completions', {
      model: 'smart',
      stream: true,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(res.status).toBe(200);
    expect(String(res.body)).toContain('"system_fingerprint":"oai"');
    expect(events[0].payload).toMatchObject({ endpointId: 'claude', status: 529 });
  });

  it('Anthropic client errors come back as OpenAI errors with their status, without failover', async () => {
    const r = router(true);
    ant.next({
      type: 'error',
      status: 400,
      errorType: 'invalid_request_error',
      message: 'max_tokens: too large',
    });
    const res = await call(r, '/chat/completions', {
      model: 'smart',
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(res.status).toBe(400);
    expect(parse(res).error).toEqual({
      message: 'max_tokens: too large',
      type: 'invalid_request_error',
      code: 'invalid_request',
      param: null,
    });
    expect(classify({ status: res.status }).failover).toBe(false);
  });

  it('embeddings never reach Anthropic; an Anthropic-only route explains itself with a 400', async () => {
    const r = router(true);
    const before = ant.requests.length;
    const res = await call(r, '/embeddings', { model: 'smart', input: 'hello' });
    expect(res.status).toBe(200);
    expect(parse(res).object).toBe('list');
    expect(ant.requests.length).toBe(before);
    const only = createRouter({
      endpoints: [{ id: 'c', url: ant.url, apiKey: ANT_KEY, provider: 'anthropic', models: ['smart'] }],
    });
    expect(explainUnservable(only, { operation: 'embeddings', model: 'smart' })?.status).toBe(400);
  });

  it('models.list is translated from Anthropic', async () => {
    const ep = createRouter({ endpoints: [{ url: ant.url, apiKey: ANT_KEY, provider: 'anthropic' }] })
      .endpoints[0];
    const dialect = getDialect('anthropic');
    const req: DialectRequest = {
      endpoint: ep,
      operation: 'models.list',
      method: 'GET',
      path: '/models',
      headers: {},
      body: undefined,
      json: undefined,
      upstreamModel: undefined,
      stream: false,
    };
    const up = dialect.prepare(req);
    const res = await fetch(up.url, { headers: up.headers });
    const out = dialect.translateResponse!(
      res.status,
      Object.fromEntries(res.headers),
      new Uint8Array(await res.arrayBuffer()),
      req,
    );
    expect(parse(out)).toEqual({
      object: 'list',
      data: [{ id: 'claude-sonnet-4-5', object: 'model', created: 1759104000, owned_by: 'anthropic' }],
    });
  });

  it('Azure: deployment URL and api-key reach the upstream', async () => {
    const az = await startFakeUpstream({ name: 'az', acceptKeys: [OAI_KEY] });
    try {
      az.next({
        type: 'custom',
        handle: (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [] }));
        },
      });
      const r = createRouter({
        endpoints: [
          {
            id: 'az',
            url: az.url.replace(/\/v1$/, ''),
            apiKey: OAI_KEY,
            provider: 'azure',
            meta: { deployments: { smart: 'prod' } },
          },
        ],
      });
      const res = await call(r, '/chat/completions', { model: 'smart', messages: [] });
      expect(res.status).toBe(200);
      expect(az.requests[0].url).toBe('/openai/deployments/prod/chat/completions?api-version=2024-10-21');
      expect(az.requests[0].headers['api-key']).toBe(OAI_KEY);
    } finally {
      await az.close();
    }
  });
});
