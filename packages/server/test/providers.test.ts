import type { ServerResponse } from 'node:http';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

let claude: FakeUpstream;
let oa: FakeUpstream;
let server: LbServer;
let client: OpenAI;
const claudeKey = fakeKey('claude');

const sse = (res: ServerResponse, events: [string, unknown][]) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const [event, data] of events) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  res.end();
};

const anthropicStream = (text: string[]): [string, unknown][] => [
  [
    'message_start',
    {
      type: 'message_start',
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-x',
        content: [],
        usage: { input_tokens: 5, output_tokens: 1 },
      },
    },
  ],
  [
    'content_block_start',
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  ],
  ...text.map((t): [string, unknown] => [
    'content_block_delta',
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } },
  ]),
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  [
    'message_delta',
    { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 3 } },
  ],
  ['message_stop', { type: 'message_stop' }],
];

/** The next request to `up` gets an Anthropic Messages answer saying `text` (or holding these content blocks). */
function answerAsClaude(up: FakeUpstream, text: string | object[], stopReason = 'end_turn'): void {
  up.next({
    type: 'custom',
    handle: (_req, res) => {
      const body = JSON.stringify({
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-x',
        content: typeof text === 'string' ? [{ type: 'text', text }] : text,
        stop_reason: stopReason,
        usage: { input_tokens: 5, output_tokens: 3 },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    },
  });
}

beforeAll(async () => {
  [claude, oa] = await Promise.all([
    startFakeUpstream({ name: 'claude' }),
    startFakeUpstream({ name: 'oa' }),
  ]);
  server = createServer({
    router: {
      endpoints: [
        { id: 'claude', url: claude.url, apiKey: claudeKey, provider: 'anthropic', priority: 1 },
        { id: 'oa', url: oa.url, apiKey: fakeKey('oa'), priority: 2 },
      ],
      backoff: { initialMs: 1, maxMs: 2 },
    },
    server: { port: 0 },
    breaker: { enabled: false },
    logDestination: { write: () => true } as any,
  });
  client = new OpenAI({ baseURL: `${await server.listen()}/v1`, apiKey: 'x', maxRetries: 0 });
});

afterAll(async () => {
  await server.close(100);
  await Promise.all([claude.close(), oa.close()]);
});

describe('provider dialects through the proxy', () => {
  it('translates an Anthropic answer to a chat completion', async () => {
    answerAsClaude(claude, 'Hi from claude');
    const r = await client.chat.completions.create({
      model: 'claude-x',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.choices[0].message.content).toBe('Hi from claude');
    const sent = claude.requests.at(-1)!;
    expect(sent.path).toBe('/v1/messages');
    expect(sent.headers['x-api-key']).toBe(claudeKey);
    expect(sent.headers.authorization).toBeUndefined();
  });

  it('translates an Anthropic stream chunk by chunk', async () => {
    claude.next({ type: 'custom', handle: (_req, res) => sse(res, anthropicStream(['Hel', 'lo'])) });
    let text = '';
    for await (const ch of await client.chat.completions.create({
      model: 'claude-x',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    }))
      text += ch.choices[0]?.delta?.content ?? '';
    expect(text).toBe('Hello');
  });

  it('fails over when the Anthropic stream opens with overloaded_error', async () => {
    claude.next({
      type: 'custom',
      handle: (_req, res) =>
        sse(res, [['error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }]]),
    });
    let text = '';
    for await (const ch of await client.chat.completions.create({
      model: 'claude-x',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    }))
      text += ch.choices[0]?.delta?.content ?? '';
    expect(text).toBe('Hello from oa');
  });

  it('routes operations a provider lacks to the endpoints that have them', async () => {
    const before = claude.count();
    const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' });
    expect(r.data).toHaveLength(1);
    expect(claude.count()).toBe(before);
  });

  it('keeps requests asking for n > 1, log probabilities or audio on endpoints that honour them', async () => {
    const asks = [
      { n: 2 },
      { logprobs: true },
      { top_logprobs: 2, logprobs: true },
      { modalities: ['text', 'audio'] },
    ];
    for (const extra of asks) {
      const [c0, o0] = [claude.count(), oa.count('/chat/completions')];
      const r = await client.chat.completions.create({
        model: 'claude-x',
        messages: [{ role: 'user', content: 'hi' }],
        ...(extra as object),
      });
      expect(r.system_fingerprint, JSON.stringify(extra)).toBe('oa');
      expect(claude.count()).toBe(c0);
      expect(oa.count('/chat/completions')).toBe(o0 + 1);
    }
    // n: 1 and logprobs: false ask for nothing special: the Anthropic endpoint (priority 1) serves them.
    answerAsClaude(claude, 'one choice');
    const r = await client.chat.completions.create({
      model: 'claude-x',
      messages: [{ role: 'user', content: 'hi' }],
      n: 1,
      logprobs: false,
    });
    expect(r.choices[0].message.content).toBe('one choice');
  });
  it('answers a response_format from Anthropic as JSON content, streamed or not', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const response_format = { type: 'json_schema' as const, json_schema: { name: 'place', schema } };
    answerAsClaude(
      claude,
      [{ type: 'tool_use', id: 'toolu_1', name: 'lb_json_response', input: { city: 'Paris' } }],
      'tool_use',
    );
    const r = await client.chat.completions.create({
      model: 'claude-x',
      messages: [{ role: 'user', content: 'Where?' }],
      response_format,
    });
    expect(JSON.parse(r.choices[0].message.content!)).toEqual({ city: 'Paris' });
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.choices[0].message.tool_calls).toBeUndefined();
    const sent = claude.requests.at(-1)!.json;
    expect(sent.tools).toEqual([expect.objectContaining({ name: 'lb_json_response', input_schema: schema })]);
    expect(sent.tool_choice).toEqual({ type: 'tool', name: 'lb_json_response' });
    expect(sent.response_format).toBeUndefined();

    claude.next({
      type: 'custom',
      handle: (_req, res) =>
        sse(res, [
          anthropicStream([])[0],
          [
            'content_block_start',
            {
              type: 'content_block_start',
              index: 0,
              content_block: { type: 'tool_use', id: 't', name: 'lb_json_response', input: {} },
            },
          ],
          ...['{"ci', 'ty": "Ro', 'me"}'].map((partial_json): [string, unknown] => [
            'content_block_delta',
            { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json } },
          ]),
          [
            'message_delta',
            { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 6 } },
          ],
          ['message_stop', { type: 'message_stop' }],
        ]),
    });
    const stream = await client.chat.completions.create({
      model: 'claude-x',
      messages: [{ role: 'user', content: 'Where?' }],
      response_format,
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const ch of stream) {
      text += ch.choices[0]?.delta?.content ?? '';
      finish = ch.choices[0]?.finish_reason ?? finish;
    }
    expect(JSON.parse(text)).toEqual({ city: 'Rome' });
    expect(finish).toBe('stop');
  });
});

describe('a parameter no endpoint of the pool honours', () => {
  let only: LbServer;
  let onlyClient: OpenAI;
  beforeAll(async () => {
    only = createServer({
      router: { endpoints: [{ id: 'claude', url: claude.url, apiKey: claudeKey, provider: 'anthropic' }] },
      server: { port: 0 },
      logDestination: { write: () => true } as any,
    });
    onlyClient = new OpenAI({ baseURL: `${await only.listen()}/v1`, apiKey: 'x', maxRetries: 0 });
  });
  afterAll(() => only.close(100));

  it('is a 400 naming the parameter and the provider, and nothing is sent upstream', async () => {
    const before = claude.count();
    for (const [extra, param] of [
      [{ n: 3 }, 'n'],
      [{ logprobs: true, top_logprobs: 1 }, 'logprobs'],
    ] as const) {
      const err = await onlyClient.chat.completions
        .create({ model: 'claude-x', messages: [{ role: 'user', content: 'hi' }], ...extra })
        .catch((e) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err.code).toBe('unsupported_parameter');
      expect(err.param).toBe(param);
      expect(err.message).toContain('anthropic');
      expect(err.message).toContain(`\`${param}\``);
    }
    expect(claude.count()).toBe(before);
  });
});
