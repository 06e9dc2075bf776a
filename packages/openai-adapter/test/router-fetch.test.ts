import { createRouter } from '@lb/core';
import { type FakeUpstream, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { Agent, type Dispatcher, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenAI, createRouterFetch, LoadBalancedOpenAI, PLACEHOLDER_BASE_URL } from '../src/index.js';
import { keyOf, type Pool, startPool } from './setup.js';

let pool: Pool;
let azure: FakeUpstream;
let anthropic: FakeUpstream;
const AZURE_KEY = 'azure-key-0123456789abcdef';
const ANTHROPIC_KEY = 'sk-ant-api03-0123456789abcdef';

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

beforeAll(async () => {
  pool = await startPool(2);
  azure = await startFakeUpstream({ name: 'azure' });
  anthropic = await startFakeUpstream({
    name: 'anthropic',
    defaultBehaviour: (rec) => ({
      type: 'custom',
      handle: (_r, res) => {
        if (rec.json?.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(
            sse('message_start', {
              type: 'message_start',
              message: {
                id: 'msg_1',
                type: 'message',
                role: 'assistant',
                model: rec.json.model,
                content: [],
                stop_reason: null,
                usage: { input_tokens: 3, output_tokens: 0 },
              },
            }),
          );
          res.write(
            sse('content_block_start', {
              type: 'content_block_start',
              index: 0,
              content_block: { type: 'text', text: '' },
            }),
          );
          res.write(
            sse('content_block_delta', {
              type: 'content_block_delta',
              index: 0,
              delta: { type: 'text_delta', text: 'Hi from' },
            }),
          );
          res.write(
            sse('content_block_delta', {
              type: 'content_block_delta',
              index: 0,
              delta: { type: 'text_delta', text: ' claude' },
            }),
          );
          res.write(sse('content_block_stop', { type: 'content_block_stop', index: 0 }));
          res.write(
            sse('message_delta', {
              type: 'message_delta',
              delta: { stop_reason: 'end_turn' },
              usage: { output_tokens: 2 },
            }),
          );
          res.end(sse('message_stop', { type: 'message_stop' }));
          return;
        }
        const body = JSON.stringify({
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          model: rec.json?.model,
          content: [{ type: 'text', text: 'Hi from claude' }],
          stop_reason: 'end_turn',
          usage: { input_tokens: 3, output_tokens: 4 },
        });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
      },
    }),
  });
});
afterAll(async () => {
  await Promise.all([pool.close(), azure.close(), anthropic.close()]);
});

describe('createRouterFetch', () => {
  it('is a plain fetch for any SDK: URL under the placeholder base, failover included', async () => {
    const router = createRouter({ endpoints: pool.endpoints(), backoff: { initialMs: 1, maxMs: 1 } });
    const f = createRouterFetch(router);
    pool.ups[0].next({ type: 'status', status: 502 });
    const res = await f(`${PLACEHOLDER_BASE_URL}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer client-secret' },
      body: JSON.stringify({ model: 'text-embedding-3-small', input: 'x' }),
    });
    expect(res.status).toBe(200);
    expect((await res.json()).data).toHaveLength(1);
    const seen = pool.ups[1].requests.at(-1)!;
    // The caller's own credentials never reach an upstream: the endpoint's key replaces them.
    expect(keyOf(seen.headers)).toBe(pool.keys[1]);
  });

  it('accepts a Request object and any base URL (path less /v1)', async () => {
    const router = createRouter({ endpoints: pool.endpoints() });
    const f = createRouterFetch(router, { providerGuard: false });
    const res = await f(new Request('http://localhost:9999/v1/models/gpt-4o?x=1', { method: 'GET' }));
    expect(await res.json()).toMatchObject({ id: 'gpt-4o', owned_by: 'a' });
    expect(pool.ups[0].requests.at(-1)!.url).toBe('/v1/models/gpt-4o?x=1');
    expect(router.guards).toHaveLength(0);
  });

  it('uses an injected transport and validates its options', async () => {
    const router = createRouter({ endpoints: pool.endpoints() });
    const urls: string[] = [];
    const f = createRouterFetch(router, {
      fetch: (input, init) => {
        urls.push(String(input));
        return fetch(input, init);
      },
    });
    await f(`${PLACEHOLDER_BASE_URL}/models`);
    expect(urls).toEqual([`${pool.ups[0].url}/models`]);
    expect(() => createRouterFetch(router, { fetch: 'nope' as never })).toThrow(
      /options.fetch.*string "nope"/,
    );
    expect(() => createRouterFetch({} as never)).toThrow(/expected an @lb\/core Router/);
  });
});

describe('the default transport', () => {
  it("goes through undici's global dispatcher (setGlobalDispatcher applies), or a swapped globalThis.fetch", async () => {
    const router = createRouter({ endpoints: pool.endpoints() });
    const client = createOpenAI(router);
    const seen: string[] = [];
    class Counting extends Agent {
      override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
        seen.push(
          `${opts.method} ${opts.origin}${opts.path} ${(opts.headers as Record<string, string>)['accept-encoding']}`,
        );
        return super.dispatch(opts, handler);
      }
    }
    const before = getGlobalDispatcher();
    const counting = new Counting();
    setGlobalDispatcher(counting);
    try {
      const r = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(r.choices[0].message.content).toBeTruthy();
      // Asked unencoded: nothing on this path decodes a compressed body.
      expect(seen).toEqual([`POST ${pool.ups[0].url.replace(/\/v1$/, '')}/v1/chat/completions identity`]);
      // A swapped globalThis.fetch (an instrumentation's, a test's) sees every call instead.
      const native = globalThis.fetch;
      const urls: string[] = [];
      globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
        urls.push(String(input));
        return native(input, init);
      }) as typeof fetch;
      try {
        await client.models.list();
      } finally {
        globalThis.fetch = native;
      }
      expect(urls).toEqual([`${pool.ups[0].url}/models`]);
    } finally {
      setGlobalDispatcher(before);
      await counting.close();
    }
  });
});

describe('provider dialects through the SDK', () => {
  it('Azure endpoints get deployment URLs, api-version and the api-key header', async () => {
    const client = new LoadBalancedOpenAI({
      endpoints: [
        {
          id: 'az',
          url: azure.url.replace(/\/v1$/, ''),
          apiKey: AZURE_KEY,
          provider: 'azure',
          meta: { deployments: { 'gpt-4o': 'prod-4o' }, apiVersion: '2024-10-21' },
        },
      ],
    });
    await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
      .catch(() => {});
    const r = azure.requests.at(-1)!;
    expect(r.url).toBe('/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21');
    expect(r.headers['api-key']).toBe(AZURE_KEY);
    expect(r.headers.authorization).toBeUndefined();
  });

  it('Anthropic endpoints answer chat completions in OpenAI format, streamed or not', async () => {
    const router = createRouter({
      endpoints: [
        {
          id: 'claude',
          url: anthropic.url,
          apiKey: ANTHROPIC_KEY,
          provider: 'anthropic',
          modelMap: { smart: 'claude-sonnet-4-5' },
        },
      ],
    });
    const client = createOpenAI(router);
    const { data: r, response } = await client.chat.completions
      .create({ model: 'smart', messages: [{ role: 'user', content: 'x' }] })
      .withResponse();
    expect(r.choices[0].message.content).toBe('Hi from claude');
    // The translated answer says who gave it, as every other one does.
    expect(response.headers.get('x-lb-endpoint')).toBe('claude');
    expect(response.headers.get('x-lb-attempts')).toBe('1');
    const seen = anthropic.requests.at(-1)!;
    expect(seen.path).toBe('/v1/messages');
    expect(seen.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    expect(seen.json.model).toBe('claude-sonnet-4-5');
    const { data: stream, response: streamed } = await client.chat.completions
      .create({ model: 'smart', messages: [{ role: 'user', content: 'x' }], stream: true })
      .withResponse();
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    expect(text).toBe('Hi from claude');
    expect(streamed.headers.get('x-lb-endpoint')).toBe('claude');
  });

  it('operations a provider cannot serve skip its endpoints, or answer 400 when no endpoint can', async () => {
    const router = createRouter({
      endpoints: [
        { id: 'claude', url: anthropic.url, apiKey: ANTHROPIC_KEY, provider: 'anthropic' },
        { id: 'oai', url: pool.ups[1].url, apiKey: pool.keys[1], priority: 2 },
      ],
    });
    const client = createOpenAI(router);
    const before = anthropic.requests.length;
    const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
    expect(e.data).toHaveLength(1);
    expect(anthropic.requests.length).toBe(before);
    router.setEndpointHealth('oai', false);
    router.reload({
      endpoints: [{ id: 'claude', url: anthropic.url, apiKey: ANTHROPIC_KEY, provider: 'anthropic' }],
    });
    const err = await client.embeddings
      .create({ model: 'text-embedding-3-small', input: 'x' })
      .catch((x) => x);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.error).toMatchObject({ code: 'unsupported_operation' });
  });

  it('requests asking for n > 1 skip Anthropic endpoints, or answer 400 naming the parameter when none is left', async () => {
    const router = createRouter({
      endpoints: [
        { id: 'claude', url: anthropic.url, apiKey: ANTHROPIC_KEY, provider: 'anthropic', priority: 1 },
        { id: 'oai', url: pool.ups[1].url, apiKey: pool.keys[1], priority: 2 },
      ],
    });
    const client = createOpenAI(router);
    const before = anthropic.requests.length;
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      n: 2,
    });
    expect(r.system_fingerprint).toBe(pool.ups[1].name);
    expect(anthropic.requests.length).toBe(before);
    router.reload({
      endpoints: [{ id: 'claude', url: anthropic.url, apiKey: ANTHROPIC_KEY, provider: 'anthropic' }],
    });
    const err = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], n: 2 })
      .catch((x) => x);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.error).toMatchObject({ code: 'unsupported_parameter', param: 'n' });
    expect(anthropic.requests.length).toBe(before);
  });
});
