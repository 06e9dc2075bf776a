import { classify } from '@lb/core';
import { describe, expect, it } from 'vitest';
import {
  anthropicDialect,
  createAnthropicDialect,
  isErrorEvent,
  isProviderError,
  streamErrorOf,
} from '../src/index.js';
import { chatRequest, endpoint, fixture, fixtureText, KEY, split, text } from './helpers.js';

const NOW = 1_700_000_000_000;
const dialect = createAnthropicDialect({ now: () => NOW });
const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

describe('anthropic request translation (fixtures)', () => {
  const cases = fixture<any[]>('anthropic/requests.json');
  it.each(cases.map((c) => [c.name, c]))('%s', (_name, c) => {
    const req = chatRequest(endpoint(), c.openai, { upstreamModel: c.upstreamModel });
    const up = anthropicDialect.prepare(req);
    expect(up.url).toBe('https://api.anthropic.com/v1/messages');
    expect(up.method).toBe('POST');
    expect(JSON.parse(text(up.body))).toEqual(c.anthropic);
  });

  it('sends x-api-key, anthropic-version and JSON content type; drops accept-encoding and client auth', () => {
    const req = chatRequest(endpoint({ headers: { 'X-Team': 'blue' } }), {
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
    });
    req.headers = { ...req.headers, 'accept-encoding': 'gzip', 'content-length': '12' };
    const up = anthropicDialect.prepare(req);
    expect(up.headers['x-api-key']).toBe(KEY);
    expect(up.headers['anthropic-version']).toBe('2023-06-01');
    expect(up.headers['content-type']).toBe('application/json');
    expect(up.headers['x-team']).toBe('blue');
    expect(up.headers['user-agent']).toBe('OpenAI/JS 6.0.0');
    expect(up.headers['accept-encoding']).toBeUndefined();
    expect(up.headers['content-length']).toBeUndefined();
    expect(up.headers.authorization).toBeUndefined();
  });

  it('reads version, max tokens and beta from endpoint meta, and adds /v1 to a bare origin', () => {
    const ep = endpoint({
      url: 'https://api.anthropic.com',
      meta: { anthropicVersion: '2024-01-01', maxTokens: 777, beta: ['a', 'b'] },
    });
    const up = anthropicDialect.prepare(
      chatRequest(ep, { model: 'm', messages: [{ role: 'user', content: 'x' }] }),
    );
    expect(up.url).toBe('https://api.anthropic.com/v1/messages');
    expect(up.headers['anthropic-version']).toBe('2024-01-01');
    expect(up.headers['anthropic-beta']).toBe('a,b');
    expect(JSON.parse(text(up.body)).max_tokens).toBe(777);
  });

  it('answers untranslatable requests with a 400 ProviderError (a client error: no failover)', () => {
    const bad = chatRequest(endpoint(), { model: 'm', messages: [{ role: 'wizard', content: 'x' }] });
    let err: unknown;
    try {
      anthropicDialect.prepare(bad);
    } catch (e) {
      err = e;
    }
    expect(isProviderError(err)).toBe(true);
    expect((err as any).status).toBe(400);
    expect((err as Error).message).toContain('"wizard"');
    expect(classify({ error: err }).kind).toBe('client');
  });

  it('validates options and endpoint meta, naming the received value', () => {
    expect(() => createAnthropicDialect({ defaultMaxTokens: 0 })).toThrow(/defaultMaxTokens.*received 0/);
    expect(() => createAnthropicDialect({ version: '' })).toThrow(/version.*received ""/);
    const ep = endpoint({ meta: { maxTokens: 'lots' } });
    expect(() => anthropicDialect.prepare(chatRequest(ep, { model: 'm', messages: [] }))).toThrow(
      /maxTokens.*"lots"/,
    );
  });

  it('supports chat completions and models only', () => {
    expect(anthropicDialect.supports('chat.completions')).toBe(true);
    expect(anthropicDialect.supports('models.list')).toBe(true);
    expect(anthropicDialect.supports('embeddings')).toBe(false);
    expect(anthropicDialect.supports('images.generations')).toBe(false);
  });
});

describe('anthropic response translation (fixtures)', () => {
  const cases = fixture<any[]>('anthropic/responses.json');
  it.each(cases.map((c) => [c.name, c]))('%s', (_name, c) => {
    const req = chatRequest(endpoint(), { model: 'smart', messages: [] });
    const out = dialect.translateResponse!(
      200,
      { 'content-type': 'application/json', 'content-length': '10' },
      enc(c.anthropic),
      req,
    );
    expect(out.status).toBe(200);
    expect(out.headers['content-type']).toBe('application/json');
    expect(out.headers['content-length']).toBeUndefined();
    expect(JSON.parse(text(out.body))).toEqual(c.openai);
  });

  it('translates the model list and a model', () => {
    const f = fixture('anthropic/models.json');
    const ep = endpoint();
    const list = {
      ...chatRequest(ep, {}),
      operation: 'models.list',
      method: 'GET',
      path: '/models',
      json: undefined,
      body: undefined,
    };
    const up = dialect.prepare(list);
    expect(up.url).toBe('https://api.anthropic.com/v1/models');
    expect(up.method).toBe('GET');
    expect(JSON.parse(text(dialect.translateResponse!(200, {}, enc(f.anthropic), list).body))).toEqual(
      f.openai,
    );
    const one = { ...list, operation: 'models.retrieve', path: '/models/claude-3-5-haiku-20241022' };
    expect(dialect.prepare(one).url).toBe('https://api.anthropic.com/v1/models/claude-3-5-haiku-20241022');
    expect(JSON.parse(text(dialect.translateResponse!(200, {}, enc(f.anthropic.data[1]), one).body))).toEqual(
      f.openai.data[1],
    );
  });
});

describe('anthropic errors keep their status and feed core classification', () => {
  const cases = fixture<any[]>('anthropic/errors.json');
  it.each(cases.map((c) => [c.name, c]))('%s', (_name, c) => {
    const req = chatRequest(endpoint(), { model: 'm', messages: [] });
    const out = dialect.translateResponse!(c.status, c.headers, enc(c.anthropic), req);
    expect(out.status).toBe(c.status);
    expect(JSON.parse(text(out.body))).toEqual(c.openai);
    expect(out.headers['content-length']).toBeUndefined();
    const verdict = classify({ status: out.status, headers: out.headers });
    expect(verdict.kind).toBe(c.kind);
    if (c.retryAfterMs) expect(verdict.retryAfterMs).toBe(c.retryAfterMs);
  });

  it('derives retry-after-ms from anthropic-ratelimit-*-reset when a 429 has no retry-after', () => {
    const req = chatRequest(endpoint(), { model: 'm', messages: [] });
    const reset = new Date(NOW + 12_000).toISOString();
    const body = enc({ type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } });
    const out = dialect.translateResponse!(429, { 'anthropic-ratelimit-requests-reset': reset }, body, req);
    expect(classify({ status: out.status, headers: out.headers }).retryAfterMs).toBe(12_000);
  });

  it('renders non-JSON error bodies and never leaks the key', () => {
    const req = chatRequest(endpoint(), { model: 'm', messages: [] });
    const out = dialect.translateResponse!(502, {}, enc(`<html>bad gateway for ${KEY}</html>`), req);
    expect(out.status).toBe(502);
    const body = text(out.body);
    expect(JSON.parse(body).error.message).toContain('Anthropic answered 502');
    expect(body).not.toContain(KEY);
  });

  it('answers a 2xx body that is not JSON with a 502 so the gateway fails over', () => {
    const req = chatRequest(endpoint(), { model: 'm', messages: [] });
    const out = dialect.translateResponse!(200, {}, enc('not json'), req);
    expect(out.status).toBe(502);
    expect(classify({ status: out.status }).failover).toBe(true);
  });
});

describe('anthropic stream translation (fixtures)', () => {
  const streams = [
    ['text, with include_usage', 'stream-text', true],
    ['tool call arguments', 'stream-tool', false],
  ] as const;
  for (const [name, file, includeUsage] of streams) {
    const input = fixtureText(`anthropic/${file}.sse`);
    const expected = fixtureText(`anthropic/${file}.expected.sse`);
    const req = () =>
      chatRequest(endpoint(), {
        model: 'smart',
        stream: true,
        messages: [],
        ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
      });
    it(`${name}: in one piece`, () => {
      const t = dialect.createStreamTranslator!(req());
      expect(t.push(input) + t.end()).toBe(expected);
      expect(t.error).toBeUndefined();
    });
    it(`${name}: split anywhere, CRLF line ends`, () => {
      for (const seed of [1, 7, 42]) {
        const t = dialect.createStreamTranslator!(req());
        let out = '';
        for (const piece of split(seed === 42 ? input.replace(/\n/g, '\r\n') : input, seed))
          out += t.push(piece);
        expect(out + t.end()).toBe(expected);
      }
    });
  }

  it('every output event parses as an OpenAI chunk and the stream reports usage', () => {
    const t = dialect.createStreamTranslator!(
      chatRequest(endpoint(), { model: 'm', stream: true, messages: [] }),
    );
    const out = t.push(fixtureText('anthropic/stream-text.sse'));
    const events = out.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    for (const e of events.slice(0, -1)) expect(JSON.parse(e.slice(6)).object).toBe('chat.completion.chunk');
    expect(t.usage).toEqual({ prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 });
  });

  it('an error event first: sets error with the HTTP status (529) and emits an OpenAI error event', () => {
    const sse = fixtureText('anthropic/stream-error.sse');
    expect(isErrorEvent(sse)).toBe(true);
    expect(streamErrorOf(sse)).toEqual({ status: 529, type: 'overloaded_error', message: 'Overloaded' });
    const t = dialect.createStreamTranslator!(
      chatRequest(endpoint(), { model: 'm', stream: true, messages: [] }),
    );
    const out = t.push(sse);
    expect(t.error?.status).toBe(529);
    expect(classify({ status: t.error!.status }).failover).toBe(true);
    expect(JSON.parse(out.slice(6))).toEqual({
      error: { message: 'Overloaded', type: 'server_error', code: 'overloaded', param: null },
    });
    expect(out).not.toContain('[DONE]');
  });

  it('an error mid-stream: content first, then the error, no [DONE]', () => {
    const t = dialect.createStreamTranslator!(
      chatRequest(endpoint(), { model: 'm', stream: true, messages: [] }),
    );
    const out = t.push(fixtureText('anthropic/stream-midway-error.sse')) + t.end();
    expect(out).toContain('"content":"Par"');
    expect(out).toContain('"code":"server_error"');
    expect(out).not.toContain('[DONE]');
    expect(t.error).toEqual({ status: 500, type: 'api_error', message: 'Internal server error' });
    expect(isErrorEvent(fixtureText('anthropic/stream-midway-error.sse'))).toBe(false);
  });

  it('isErrorEvent also reads OpenAI-compatible error events and ignores normal ones', () => {
    expect(
      isErrorEvent(
        'data: {"error":{"message":"rate limited","type":"rate_limit_error","code":"rate_limit_exceeded"}}\n\n',
      ),
    ).toBe(true);
    expect(streamErrorOf('data: {"error":{"message":"x","code":"rate_limit_exceeded"}}\n\n')?.status).toBe(
      429,
    );
    expect(
      isErrorEvent(
        ': keep-alive\n\nevent: ping\ndata: {"type":"ping"}\n\nevent: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"m"}}\n\n',
      ),
    ).toBe(true);
    expect(isErrorEvent('data: {"id":"c","object":"chat.completion.chunk","choices":[]}\n\n')).toBe(false);
    expect(isErrorEvent('data: [DONE]\n\n')).toBe(false);
    expect(isErrorEvent('')).toBe(false);
  });
});

describe('response_format as a forced call to the JSON tool', () => {
  const schema = {
    type: 'object',
    properties: { city: { type: 'string' }, warm: { type: 'boolean' } },
    required: ['city', 'warm'],
  };
  const messages = [{ role: 'user', content: 'Which city is warm?' }];
  const weather = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } };
  const sent = (body: Record<string, unknown>) =>
    JSON.parse(
      text(anthropicDialect.prepare(chatRequest(endpoint(), { model: 'm', messages, ...body })).body),
    );

  it('json_schema: the schema becomes the only tool, forced; json_object: any object', () => {
    const s = sent({ response_format: { type: 'json_schema', json_schema: { name: 'verdict', schema } } });
    expect(s.tools).toEqual([
      {
        name: 'lb_json_response',
        description: 'Answer with a JSON object matching the schema (verdict).',
        input_schema: schema,
      },
    ]);
    expect(s.tool_choice).toEqual({ type: 'tool', name: 'lb_json_response' });
    const o = sent({ response_format: { type: 'json_object' } });
    expect(o.tools[0].input_schema).toEqual({ type: 'object', additionalProperties: true });
    expect(o.tool_choice).toEqual({ type: 'tool', name: 'lb_json_response' });
    const t = sent({ response_format: { type: 'text' } });
    expect(t.tools).toBeUndefined();
    expect(t.tool_choice).toBeUndefined();
  });

  it("beside the caller's tools: some tool must be called; a forced tool of theirs stays; none drops theirs", () => {
    const rf = { type: 'json_schema', json_schema: { name: 'v', schema } };
    const auto = sent({ tools: [weather], response_format: rf });
    expect(auto.tools.map((x: any) => x.name)).toEqual(['get_weather', 'lb_json_response']);
    expect(auto.tool_choice).toEqual({ type: 'any' });
    const forced = sent({
      tools: [weather],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      response_format: rf,
    });
    expect(forced.tool_choice).toEqual({ type: 'tool', name: 'get_weather' });
    const none = sent({ tools: [weather], tool_choice: 'none', response_format: rf });
    expect(none.tools.map((x: any) => x.name)).toEqual(['lb_json_response']);
    expect(none.tool_choice).toEqual({ type: 'tool', name: 'lb_json_response' });
    const thinking = sent({ thinking: { type: 'enabled', budget_tokens: 2048 }, response_format: rf });
    expect(thinking.tool_choice).toEqual({ type: 'auto' });
  });

  it('a json_schema without a schema object is a 400 naming the field', () => {
    const err = (() => {
      try {
        sent({ response_format: { type: 'json_schema', json_schema: { name: 'v' } } });
      } catch (e) {
        return e as Error & { status: number };
      }
    })();
    expect(isProviderError(err)).toBe(true);
    expect(err?.status).toBe(400);
    expect(err?.message).toContain('response_format.json_schema.schema');
  });

  it('the answer: the call becomes the message content, finish_reason stop', () => {
    const req = chatRequest(endpoint(), { model: 'm', messages });
    const out = dialect.translateResponse!(
      200,
      { 'content-type': 'application/json' },
      enc({
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-x',
        content: [
          { type: 'tool_use', id: 'toolu_1', name: 'lb_json_response', input: { city: 'Paris', warm: true } },
        ],
        stop_reason: 'tool_use',
        usage: { input_tokens: 10, output_tokens: 5 },
      }),
      req,
    );
    const body = JSON.parse(text(out.body));
    expect(body.choices[0].message).toEqual({
      role: 'assistant',
      content: '{"city":"Paris","warm":true}',
      refusal: null,
    });
    expect(body.choices[0].finish_reason).toBe('stop');
  });

  it('streamed: the call input arrives as content deltas, finish_reason stop, other tools still tool calls', () => {
    const ev = (type: string, data: object) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
    const start = ev('message_start', {
      message: { id: 'msg_2', model: 'claude-x', usage: { input_tokens: 9, output_tokens: 1 } },
    });
    const json = (index: number) =>
      ev('content_block_start', {
        index,
        content_block: { type: 'tool_use', id: 'toolu_2', name: 'lb_json_response', input: {} },
      }) +
      ev('content_block_delta', {
        index,
        delta: { type: 'input_json_delta', partial_json: '{"city": "Pa' },
      }) +
      ev('content_block_delta', {
        index,
        delta: { type: 'input_json_delta', partial_json: 'ris", "warm": true}' },
      }) +
      ev('content_block_stop', { index });
    const end =
      ev('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 7 } }) +
      ev('message_stop', {});
    const run = (input: string) => {
      const t = dialect.createStreamTranslator!(
        chatRequest(endpoint(), { model: 'm', stream: true, messages }),
      );
      const chunks = (t.push(input) + t.end())
        .split('\n\n')
        .filter((x) => x.startsWith('data: {'))
        .map((x) => JSON.parse(x.slice(6)));
      return {
        content: chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''),
        calls: chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []),
        finish: chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean),
      };
    };
    const r = run(start + json(0) + end);
    expect(JSON.parse(r.content)).toEqual({ city: 'Paris', warm: true });
    expect(r.calls).toEqual([]);
    expect(r.finish).toEqual(['stop']);
    // The model called the caller's tool instead: a tool call as ever.
    const other =
      ev('content_block_start', {
        index: 0,
        content_block: { type: 'tool_use', id: 't', name: 'get_weather', input: {} },
      }) + ev('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: '{}' } });
    const o = run(start + other + end);
    expect(o.calls[0].function.name).toBe('get_weather');
    expect(o.finish).toEqual(['tool_calls']);
  });
});
