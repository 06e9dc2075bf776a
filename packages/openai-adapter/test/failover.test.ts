import { createRouter, type Router } from '@lb/core';
import { collectEvents } from '@lb/testing';
import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createOpenAI, createRouterFetch, LoadBalancedOpenAI, PLACEHOLDER_BASE_URL } from '../src/index.js';
import { keyOf, type Pool, startPool } from './setup.js';

let pool: Pool;
let router: Router;
let client: LoadBalancedOpenAI;
const messages = [{ role: 'user' as const, content: 'hi' }];

beforeEach(async () => {
  pool = await startPool(3);
  router = createRouter({
    endpoints: pool.endpoints([{}, {}, {}]),
    backoff: { initialMs: 1, maxMs: 1 },
    maxWaitMs: 0,
  });
  client = createOpenAI(router);
});
afterEach(() => pool.close());

function served() {
  return pool.ups.map((u) => u.count('/chat/completions'));
}

describe('failover', () => {
  it.each([
    ['500', { type: 'status', status: 500 } as const, 'server'],
    ['429', { type: 'status', status: 429, headers: { 'retry-after': '30' } } as const, 'rate-limit'],
    ['timeout', { type: 'hang' } as const, 'timeout'],
    ['connection reset', { type: 'reset' } as const, 'network'],
  ])('on %s moves to the next endpoint with its own key', async (_name, behaviour, kind) => {
    // Only the hanging endpoint gets a short attempt timeout: an answer that is merely slow on a loaded machine
    // must not be read as one.
    if (kind === 'timeout')
      router.reload({ ...router.config, endpoints: pool.endpoints([{ timeoutMs: 300 }, {}, {}]) });
    const { events } = collectEvents(router, ['attempt:failure']);
    pool.ups[0].next(behaviour);
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(r.system_fingerprint).toBe('b');
    expect(served()).toEqual([1, 1, 0]);
    expect(keyOf(pool.ups[1].requests[0].headers)).toBe(pool.keys[1]);
    expect(events.map((e) => [e.payload.endpointId, e.payload.kind])).toEqual([['a', kind]]);
  });

  it('on 401 retires the key and the next call skips it', async () => {
    pool.ups[0].setAcceptKeys(['sk-something-else']);
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(r.system_fingerprint).toBe('b');
    expect(router.getHealth('a')?.status).toBe('unhealthy');
    await client.chat.completions.create({ model: 'gpt-4o', messages });
    expect(served()).toEqual([1, 2, 0]);
  });

  it('a client error (400) is returned as the SDK error without failover', async () => {
    pool.ups[0].next({
      type: 'status',
      status: 400,
      body: { error: { message: 'bad messages', type: 'invalid_request_error', param: null, code: null } },
    });
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.message).toContain('bad messages');
    expect(served()).toEqual([1, 0, 0]);
  });

  it("when every endpoint fails the SDK raises its typed error with the router's verdict, as lb-server", async () => {
    for (const u of pool.ups) u.setDefault({ type: 'status', status: 503 });
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.status).toBe(502);
    expect(err.error).toMatchObject({ code: 'upstream_error' });
    expect(served().reduce((a, b) => a + b)).toBe(4); // 1 + router maxRetries 3, no SDK retries
  });

  it('all rate limited: RateLimitError with the retry-after the router computed', async () => {
    for (const u of pool.ups) u.setDefault({ type: 'status', status: 429, headers: { 'retry-after': '20' } });
    const first = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    expect(first).toBeInstanceOf(OpenAI.RateLimitError);
    // Now every endpoint is cooling: nothing is tried, the router answers 429 itself.
    const before = served().reduce((a, b) => a + b);
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(Number(err.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(err.error).toMatchObject({ code: 'rate_limit_exceeded' });
    expect(served().reduce((a, b) => a + b)).toBe(before);
  });

  it('all disabled: 503 with an OpenAI-shaped body', async () => {
    for (const id of ['a', 'b', 'c']) router.setEndpointHealth(id, false);
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.status).toBe(503);
    expect(err.error).toMatchObject({ code: 'no_healthy_endpoint', type: 'server_error' });
  });

  it('a model no endpoint serves is a 404 NotFoundError', async () => {
    const c = new LoadBalancedOpenAI({
      endpoints: [{ url: pool.ups[0].url, apiKey: pool.keys[0], models: ['gpt-4o'] }],
    });
    const err = await c.chat.completions.create({ model: 'llama-3', messages }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.error).toMatchObject({ code: 'model_not_found' });
  });

  it('x-lb-tags routes to the tagged endpoints, and tags none carries are a 400 BadRequestError', async () => {
    const c = new LoadBalancedOpenAI({
      endpoints: [
        { url: pool.ups[0].url, apiKey: pool.keys[0], tags: ['us'] },
        { url: pool.ups[1].url, apiKey: pool.keys[1], tags: ['eu'], priority: 2 },
      ],
    });
    const r = await c.chat.completions.create(
      { model: 'gpt-4o', messages },
      { headers: { 'x-lb-tags': 'eu' } },
    );
    expect(r.system_fingerprint).toBe('b');
    const err = await c.chat.completions
      .create({ model: 'gpt-4o', messages }, { headers: { 'x-lb-tags': 'eu,us' } })
      .catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.error).toMatchObject({ code: 'no_endpoint_with_tags' });
    expect(served()).toEqual([0, 1, 0]);
  });

  it('x-lb-endpoint and x-lb-attempts say who answered, plain, streamed, with usage read, and on errors', async () => {
    pool.ups[0].next({ type: 'status', status: 500 });
    const plain = await client.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(plain.data.system_fingerprint).toBe('b');
    expect(plain.response.headers.get('x-lb-endpoint')).toBe('b');
    expect(plain.response.headers.get('x-lb-attempts')).toBe('2');
    const direct = await client.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect([
      direct.response.headers.get('x-lb-endpoint'),
      direct.response.headers.get('x-lb-attempts'),
    ]).toEqual(['a', '1']);
    pool.ups[0].next({ type: 'status', status: 503 });
    const streamed = await client.chat.completions
      .create({ model: 'gpt-4o', messages, stream: true })
      .withResponse();
    let text = '';
    for await (const chunk of streamed.data) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(streamed.response.headers.get('x-lb-endpoint')).toBe('b');
    expect(streamed.response.headers.get('x-lb-attempts')).toBe('2');
    // Token usage read from the body as the caller reads it: the headers are there too.
    const usage: number[] = [];
    const off = router.on('attempt:usage', (e) => usage.push(e.usage.total_tokens ?? -1));
    const counted = await client.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    off();
    expect(usage).toEqual([counted.data.usage?.total_tokens]);
    expect(counted.response.headers.get('x-lb-endpoint')).toBe('a');
    for (const u of pool.ups) u.setDefault({ type: 'status', status: 502 });
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.headers.get('x-lb-attempts')).toBe('4');
  });

  it('responseHeaders: false leaves them out; a non-boolean is refused', async () => {
    const quiet = createOpenAI(router, { responseHeaders: false });
    const { response } = await quiet.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(response.headers.get('x-lb-endpoint')).toBeNull();
    expect(response.headers.get('x-lb-attempts')).toBeNull();
    expect(() => createOpenAI(router, { responseHeaders: 'yes' as unknown as boolean })).toThrow(
      /responseHeaders must be a boolean, received string "yes"/,
    );
  });

  it("drops a failed attempt's body unread: a 500 whose body never ends does not hold up the failover", async () => {
    pool.ups[0].setDefault({
      type: 'custom',
      handle: (_req, res) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.write('{"error":{"message":"this body never ends","type":"server_error","padding":"');
      },
    });
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
    expect(r.response.headers.get('x-lb-endpoint')).toBe(pool.ups[1].name);
    expect(served()).toEqual([1, 1, 0]);
  });

  it('passes on an answer with no body (204) as it came', async () => {
    pool.ups[0].setDefault({
      type: 'custom',
      handle: (_req, res) => {
        res.writeHead(204, { 'x-upstream': 'yes' });
        res.end();
      },
    });
    const f = createRouterFetch(router);
    const res = await f(`${PLACEHOLDER_BASE_URL}/files/file-abc`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(res.headers.get('x-upstream')).toBe('yes');
    expect(await res.text()).toBe('');
  });

  it('keys never appear in errors, events, snapshots or health output', async () => {
    const leaky = pool.keys[0];
    pool.ups[0].setDefault({
      type: 'status',
      status: 500,
      body: { error: { message: `upstream echoed ${leaky} and ${pool.keys[1]}`, type: 'server_error' } },
    });
    pool.ups[1].setDefault({
      type: 'status',
      status: 500,
      body: { error: { message: `key ${pool.keys[1]}` } },
    });
    pool.ups[2].setDefault({
      type: 'status',
      status: 500,
      body: { error: { message: `key ${pool.keys[2]}` } },
    });
    const { events } = collectEvents(router, ['attempt:failure', 'request:exhausted']);
    const err = await client.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const dump = [
      String(err),
      err.message,
      JSON.stringify(err.error),
      JSON.stringify(events),
      JSON.stringify(router.snapshot()),
      JSON.stringify(client.getDetailedHealth()),
      JSON.stringify(client.getKeyHealthStatus()),
      JSON.stringify(client.getModelInfo()),
    ].join('\n');
    expect(dump).toContain('sk-proj'); // masked forms are there
    for (const k of pool.keys) expect(dump).not.toContain(k);
  });

  it('caller abort cancels the upstream request and stops failover', async () => {
    pool.ups[0].next({ type: 'hang' });
    const ac = new AbortController();
    const p = client.chat.completions.create({ model: 'gpt-4o', messages }, { signal: ac.signal });
    await vi.waitFor(() => expect(pool.ups[0].requests).toHaveLength(1));
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    await vi.waitFor(() => expect(pool.ups[0].aborted).toBe(1));
    expect(served()).toEqual([1, 0, 0]);
  });
});
