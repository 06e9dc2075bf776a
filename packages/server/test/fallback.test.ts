// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` references in a config file.

import { parseConfig } from '@lb/config-env';
import type { Router, RouterConfig, RouterEvents } from '@lb/core';
import type { FallbackConfig } from '@lb/exchange';
import { LoadBalancedOpenAI } from '@lb/openai-adapter';
import { type FakeUpstream, fakeKey, startFakeUpstream, streamedText } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../src/index.js';
import { adapter, closeAfterTest, server } from './surfaces.js';

// Model fallbacks (issue 25, part 1), on both surfaces: lb-server through the official `openai` SDK over HTTP, and
// `LoadBalancedOpenAI` in-process. The chains, the walk and the causes are `@lb/exchange`'s `FallbackRun`.

const messages = [{ role: 'user' as const, content: 'hi' }];

const contextError = {
  type: 'status' as const,
  status: 400,
  body: {
    error: {
      message:
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 200000 tokens.",
      type: 'invalid_request_error',
      param: 'messages',
      code: 'context_length_exceeded',
    },
  },
};
const anthropicTooLong = {
  type: 'status' as const,
  status: 400,
  body: {
    type: 'error',
    error: { type: 'invalid_request_error', message: 'prompt is too long: 210000 tokens > 200000 maximum' },
  },
};
const policyError = {
  type: 'status' as const,
  status: 400,
  body: {
    error: {
      message: 'Your request was rejected as a result of our safety system.',
      type: 'invalid_request_error',
      param: null,
      code: 'content_policy_violation',
    },
  },
};
const azurePolicy = {
  type: 'status' as const,
  status: 400,
  body: {
    error: {
      message:
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
      type: null,
      param: 'prompt',
      code: 'content_filter',
      status: 400,
      innererror: { code: 'ResponsibleAIPolicyViolation' },
    },
  },
};
const plainBadRequest = {
  type: 'status' as const,
  status: 400,
  body: {
    error: {
      message: "'messages' is a required property",
      type: 'invalid_request_error',
      param: null,
      code: null,
    },
  },
};

function collect(router: Router): RouterEvents['fallback'][] {
  const seen: RouterEvents['fallback'][] = [];
  router.on('fallback', (e) => seen.push(e));
  return seen;
}

describe.each([server, adapter])('model fallbacks through $name', (surface) => {
  const keys = { main: fakeKey('main'), mini: fakeKey('mini'), big: fakeKey('big'), safe: fakeKey('safe') };
  let main: FakeUpstream;
  let mini: FakeUpstream;
  let big: FakeUpstream;
  let safe: FakeUpstream;
  const all = () => [main, mini, big, safe];
  beforeAll(async () => {
    [main, mini, big, safe] = await Promise.all([
      startFakeUpstream({ name: 'main', acceptKeys: [keys.main] }),
      startFakeUpstream({ name: 'mini', acceptKeys: [keys.mini] }),
      startFakeUpstream({ name: 'big', acceptKeys: [keys.big] }),
      startFakeUpstream({ name: 'safe', acceptKeys: [keys.safe] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all(all().map((u) => u.close()));
  });
  afterEach(() => {
    for (const u of all()) {
      u.setDefault({ type: 'ok' });
      u.requests.length = 0;
    }
  });

  const config = (): RouterConfig => ({
    endpoints: [
      { id: 'main', url: main.url, apiKey: keys.main, models: ['gpt-4o'] },
      { id: 'mini', url: mini.url, apiKey: keys.mini, models: ['gpt-4o-mini'] },
      { id: 'big', url: big.url, apiKey: keys.big, models: ['gpt-4.1'] },
      { id: 'safe', url: safe.url, apiKey: keys.safe, models: ['claude-3-5-sonnet'] },
    ],
    strategy: 'priority',
    maxRetries: 1,
    backoff: { initialMs: 1, maxMs: 1 },
  });
  const chains: FallbackConfig = {
    default: { 'gpt-4o': ['gpt-4o-mini', 'claude-3-5-sonnet'] },
    contextWindow: { 'gpt-4o-mini': ['gpt-4.1'], 'gpt-4o': ['gpt-4.1'] },
    contentPolicy: { 'gpt-4o': ['claude-3-5-sonnet'] },
  };

  it('a context-length error falls to the bigger model: its answer, its model, x-lb-fallback, a fallback event', async () => {
    const { client, router } = await surface.start(config(), { fallbacks: chains });
    const seen = collect(router);
    mini.next(contextError);
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }).withResponse();
    expect(r.data.choices[0].message.content).toBe('Hello from big');
    expect(r.data.model).toBe('gpt-4.1');
    expect(r.response.headers.get('x-lb-fallback')).toBe('gpt-4.1');
    expect(r.response.headers.get('x-lb-endpoint')).toBe('big');
    expect(big.requests[0].json.model).toBe('gpt-4.1');
    expect(seen).toEqual([
      expect.objectContaining({ from: 'gpt-4o-mini', to: 'gpt-4.1', cause: 'context_window' }),
    ]);
  });

  it('Anthropic\'s "prompt is too long" is a context-length error too; streams fall back as well', async () => {
    const { client } = await surface.start(config(), { fallbacks: chains });
    mini.next(anthropicTooLong);
    const r = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages, stream: true })
      .withResponse();
    expect(await streamedText(r.data)).toBe('Hello from big');
    expect(r.response.headers.get('x-lb-fallback')).toBe('gpt-4.1');
  });

  it('a content-policy error goes to its own chain (OpenAI and Azure shapes)', async () => {
    const { client, router } = await surface.start(config(), { fallbacks: chains });
    const seen = collect(router);
    main.next(policyError);
    const r1 = await client.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(r1.data.choices[0].message.content).toBe('Hello from safe');
    expect(r1.response.headers.get('x-lb-fallback')).toBe('claude-3-5-sonnet');
    main.next(azurePolicy);
    const r2 = await client.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(r2.data.model).toBe('claude-3-5-sonnet');
    expect(seen.map((e) => e.cause)).toEqual(['content_policy', 'content_policy']);
    expect(mini.requests).toHaveLength(0);
  });

  it('a client error no chain is for reaches the client as it came (body read whole, then passed on)', async () => {
    const { client } = await surface.start(config(), { fallbacks: chains });
    main.next(plainBadRequest);
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.message).toContain("'messages' is a required property");
    expect(err.headers.get('x-lb-fallback')).toBeNull();
    expect(mini.requests).toHaveLength(0);
    expect(safe.requests).toHaveLength(0);
  });

  it('a context error with no chain for it is answered as it came', async () => {
    const { client } = await surface.start(config(), { fallbacks: chains });
    big.next(contextError);
    const err = await client.chat.completions.create({ model: 'gpt-4.1', messages }).catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.code).toBe('context_length_exceeded');
  });

  it('a group all down goes down the default chain', async () => {
    const { client, router } = await surface.start(config(), { fallbacks: chains });
    const seen = collect(router);
    main.setDefault({ type: 'status', status: 503 });
    mini.setDefault({ type: 'status', status: 500 });
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(r.data.choices[0].message.content).toBe('Hello from safe');
    expect(r.response.headers.get('x-lb-fallback')).toBe('claude-3-5-sonnet');
    expect(seen.map((e) => [e.from, e.to, e.cause])).toEqual([
      ['gpt-4o', 'gpt-4o-mini', 'default'],
      ['gpt-4o-mini', 'claude-3-5-sonnet', 'default'],
    ]);
  });

  it('a body `models: [...]` is honoured and stripped: the upstream never sees it', async () => {
    const { client } = await surface.start(config());
    main.setDefault({ type: 'status', status: 503 });
    const r = await client.chat.completions
      .create({ model: 'gpt-4o', messages, models: ['gpt-4o', 'gpt-4.1'] } as never)
      .withResponse();
    expect((r.data as OpenAI.ChatCompletion).choices[0].message.content).toBe('Hello from big');
    expect(r.response.headers.get('x-lb-fallback')).toBe('gpt-4.1');
    for (const u of [main, big]) for (const q of u.requests) expect(q.json).not.toHaveProperty('models');
    expect(big.requests[0].json.model).toBe('gpt-4.1');
    expect(main.requests.length).toBeGreaterThan(0);
  });

  it('`models` alone names the primary (its first)', async () => {
    const { client } = await surface.start(config());
    const r = await client.chat.completions
      .create({ messages, models: ['gpt-4o-mini', 'gpt-4.1'] } as never)
      .withResponse();
    expect((r.data as OpenAI.ChatCompletion).choices[0].message.content).toBe('Hello from mini');
    expect(r.response.headers.get('x-lb-fallback')).toBeNull();
    expect(mini.requests[0].json).toEqual({ messages, model: 'gpt-4o-mini' });
  });

  it('`x-lb-fallbacks` is honoured for every cause and never forwarded', async () => {
    const { client } = await surface.start(config());
    mini.next(contextError);
    const r = await client.chat.completions
      .create(
        { model: 'gpt-4o-mini', messages },
        { headers: { 'x-lb-fallbacks': 'gpt-4.1, claude-3-5-sonnet' } },
      )
      .withResponse();
    expect(r.data.choices[0].message.content).toBe('Hello from big');
    expect(r.response.headers.get('x-lb-fallback')).toBe('gpt-4.1');
    for (const u of [mini, big])
      for (const q of u.requests) expect(q.headers['x-lb-fallbacks']).toBeUndefined();
  });

  it('a chain never loops: each model is tried once, then the last error is answered', async () => {
    const loop: FallbackConfig = {
      default: { 'gpt-4o': ['gpt-4o-mini'], 'gpt-4o-mini': ['gpt-4o'] },
      contextWindow: { 'gpt-4o': ['gpt-4o-mini'], 'gpt-4o-mini': ['gpt-4o', 'gpt-4o-mini'] },
    };
    const { client, router } = await surface.start(config(), { fallbacks: loop });
    const seen = collect(router);
    main.setDefault(contextError);
    mini.setDefault(contextError);
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.code).toBe('context_length_exceeded');
    expect(seen.map((e) => [e.from, e.to])).toEqual([['gpt-4o', 'gpt-4o-mini']]);
    expect(main.requests).toHaveLength(1);
    expect(mini.requests).toHaveLength(1);
  });

  it('an unknown model follows the default chain (model_not_found)', async () => {
    const { client } = await surface.start(config(), {
      fallbacks: { default: { 'gpt-5-preview': ['gpt-4o-mini'] } },
    });
    const r = await client.chat.completions.create({ model: 'gpt-5-preview', messages }).withResponse();
    expect(r.data.choices[0].message.content).toBe('Hello from mini');
    expect(r.response.headers.get('x-lb-fallback')).toBe('gpt-4o-mini');
  });

  it('a bad `models` field is a 400 in OpenAI shape', async () => {
    const { client } = await surface.start(config());
    const err = await client.chat.completions
      .create({ model: 'gpt-4o', messages, models: 'x' } as never)
      .catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.code).toBe('invalid_models');
  });

  it('the whole chain shares the request deadline', async () => {
    const cfg = { ...config(), deadlineMs: 400 };
    const { client, router } = await surface.start(cfg, { fallbacks: chains });
    const seen = collect(router);
    main.setDefault({ type: 'hang' });
    mini.setDefault({ type: 'hang' });
    safe.setDefault({ type: 'hang' });
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    expect(err.status).toBe(504);
    // The deadline passed on the first model: nothing is left for the chain.
    expect(seen).toEqual([]);
  });
});

describe('model fallbacks in lb-server observability', () => {
  let up: FakeUpstream;
  const key = fakeKey('obs');
  beforeAll(async () => {
    up = await startFakeUpstream({ name: 'obs', acceptKeys: [key] });
  });
  afterAll(async () => {
    await up.close();
  });

  it('counts lb_fallbacks_total{from,to,cause} and /stats, and lists chain models in /v1/models', async () => {
    const { client, base } = await server.start(
      {
        endpoints: [
          { id: 'small', url: up.url, apiKey: key, models: ['gpt-4o-mini'] },
          { id: 'large', url: up.url, apiKey: key, models: ['gpt-4.1'] },
        ],
      },
      {
        fallbacks: {
          contextWindow: { 'gpt-4o-mini': ['gpt-4.1'] },
          default: { 'gpt-5-preview': ['gpt-4o-mini'] },
        },
      },
    );
    up.next(contextError);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    await client.chat.completions.create({ model: 'gpt-5-preview', messages });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('lb_fallbacks_total{from="gpt-4o-mini",to="gpt-4.1",cause="context_window"} 1');
    // A name no endpoint serves is a chain's key only: never a label of its own.
    expect(metrics).toContain('lb_fallbacks_total{from="other",to="gpt-4o-mini",cause="default"} 1');
    const stats = await (await fetch(`${base}/stats`)).json();
    expect(stats.totals.fallbacks).toEqual({
      total: 2,
      byCause: { context_window: 1, content_policy: 0, default: 1 },
    });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id).sort()).toEqual(['gpt-4.1', 'gpt-4o-mini', 'gpt-5-preview']);
  });
});

describe('[fallbacks] from a config file reaches both surfaces', () => {
  let small: FakeUpstream;
  let large: FakeUpstream;
  const key = fakeKey('cfg');
  beforeAll(async () => {
    [small, large] = await Promise.all([
      startFakeUpstream({ name: 'small', acceptKeys: [key] }),
      startFakeUpstream({ name: 'large', acceptKeys: [key] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([small.close(), large.close()]);
  });

  it('lb-server from the loaded config and LoadBalancedOpenAI({ router: config }) both fall back', async () => {
    const config = parseConfig(
      `
[[endpoints]]
name = "small"
base_url = "${small.url}"
api_key = "\${KEY}"
models = ["gpt-4o-mini"]

[[endpoints]]
name = "large"
base_url = "${large.url}"
api_key = "\${KEY}"
models = ["gpt-4.1"]

[fallbacks.context_window]
"gpt-4o-mini" = ["gpt-4.1"]
`,
      'toml',
      { KEY: key },
    );
    const s = createServer({
      ...config,
      server: { ...config.server, port: 0 },
      logDestination: { write: () => true } as never,
    });
    const base = await s.listen();
    closeAfterTest(() => s.close(100));
    const clients = [
      new OpenAI({ baseURL: `${base}/v1`, apiKey: 'client-key', maxRetries: 0 }),
      new LoadBalancedOpenAI({ router: config }),
    ];
    for (const client of clients) {
      small.next(contextError);
      const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }).withResponse();
      expect(r.data.choices[0].message.content).toBe('Hello from large');
      expect(r.response.headers.get('x-lb-fallback')).toBe('gpt-4.1');
    }
  });
});
