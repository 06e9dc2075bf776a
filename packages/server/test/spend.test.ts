import type { EndpointConfig } from '@lb/core';
import {
  type FakeAnthropic,
  type FakeUpstream,
  fakeKey,
  startFakeAnthropic,
  startFakeUpstream,
  startRedis,
  type TestRedis,
} from '@lb/testing';
import OpenAI from 'openai';
import { Client } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// Spend, budgets and virtual keys through lb-server, driven by the official `openai` SDK against fake upstreams in
// OpenAI's (and Anthropic's) wire format, and a real redis-server for the replicas.

const upKey = fakeKey('spend-upstream');
const teamA = fakeKey('team-a');
const teamB = fakeKey('team-b');
const admin = fakeKey('spend-admin');
// Round prices: input 1 USD and output 2 USD per 1M tokens. The fake answers 9 prompt + 12 completion tokens.
const PRICES = {
  'gpt-4o-mini': { input: 1, output: 2 },
  'text-embedding-3-small': { input: 1 },
};
const CHAT_USD = (9 * 1 + 12 * 2) / 1e6; // 0.000033

let up: FakeUpstream;
let redis: TestRedis | undefined;
const servers: LbServer[] = [];
const logs: string[] = [];

beforeAll(async () => {
  up = await startFakeUpstream({ name: 'up', acceptKeys: [upKey] });
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
  logs.length = 0;
});
afterAll(async () => {
  await up?.close();
  await redis?.stop();
});

async function start(
  opts: {
    keys?: Record<string, unknown>[];
    apiKeys?: string[];
    adminKey?: string;
    redisUrl?: string;
    endpoints?: EndpointConfig[];
    strategy?: string;
  } = {},
): Promise<LbServer> {
  const s = createServer({
    router: {
      endpoints: opts.endpoints ?? [{ id: 'up', url: up.url, apiKey: upKey }],
      ...(opts.strategy ? { strategy: opts.strategy } : {}),
    } as never,
    breaker: { enabled: false },
    logDestination: { write: (l: string) => logs.push(String(l)) > 0 } as never,
    server: {
      port: 0,
      apiKeys: opts.apiKeys ?? [],
      ...(opts.adminKey ? { adminKey: opts.adminKey } : {}),
      ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}),
    },
    spend: { keys: (opts.keys ?? []) as never, prices: PRICES },
  });
  await s.listen();
  servers.push(s);
  return s;
}

const client = (s: LbServer, apiKey = 'none') =>
  new OpenAI({ baseURL: `${s.url}/v1`, apiKey, maxRetries: 0 });
const messages = [{ role: 'user' as const, content: 'hi' }];

async function status(p: Promise<unknown>): Promise<{ status: number; code?: string; headers?: Headers }> {
  try {
    await p;
    return { status: 200 };
  } catch (e) {
    const err = e as InstanceType<typeof OpenAI.APIError>;
    return { status: err.status ?? 0, code: err.code ?? undefined, headers: err.headers as Headers };
  }
}

/** The raw SSE text of a streaming chat request sent with `fetch` (what the client's stream is, byte for byte). */
async function rawStream(s: LbServer, body: object, key = 'none'): Promise<string> {
  const r = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  expect(r.status).toBe(200);
  return r.text();
}

describe('cost per request', () => {
  it('chat: x-lb-cost in USD from the usage, in /stats, the request log and metrics', async () => {
    const s = await start();
    const { data, response } = await client(s)
      .chat.completions.create({ model: 'gpt-4o-mini', messages })
      .withResponse();
    expect(data.usage?.prompt_tokens).toBe(9);
    expect(Number(response.headers.get('x-lb-cost'))).toBeCloseTo(CHAT_USD, 12);
    const stats = (await (await fetch(`${s.url}/stats`)).json()) as any;
    expect(stats.spend.today.total.usd).toBeCloseTo(CHAT_USD, 12);
    expect(stats.spend.month.byModel['gpt-4o-mini'].requests).toBe(1);
    expect(stats.spend.today.byEndpoint.up.usd).toBeCloseTo(CHAT_USD, 12);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const line = metrics.split('\n').find((l) => l.startsWith('lb_spend_usd_total{'));
    expect(line).toMatch(/^lb_spend_usd_total\{endpoint="up",model="(gpt-4o-mini|other)",key="none"\} /); // models outside the config are "other"
    expect(Number(line!.split(' ').pop())).toBeCloseTo(CHAT_USD, 12);
  });

  it('embeddings are priced from their prompt tokens', async () => {
    const s = await start();
    const { response } = await client(s)
      .embeddings.create({ model: 'text-embedding-3-small', input: 'hello' })
      .withResponse();
    expect(Number(response.headers.get('x-lb-cost'))).toBeCloseTo(4 / 1e6, 12);
  });

  it('an unpriced model has no x-lb-cost (unknown, never 0) and says so once in the log', async () => {
    const s = await start();
    for (let i = 0; i < 2; i++) {
      const { response } = await client(s)
        .chat.completions.create({ model: 'mystery-model-x', messages })
        .withResponse();
      expect(response.headers.get('x-lb-cost')).toBeNull();
    }
    expect(logs.filter((l) => l.includes('no price for model mystery-model-x'))).toHaveLength(1);
    const stats = (await (await fetch(`${s.url}/stats`)).json()) as any;
    expect(stats.spend.today.total.unpriced).toBe(2);
    expect(stats.spend.today.total.usd).toBe(0);
  });

  it("Anthropic's usage shape is priced (input_tokens / output_tokens through the dialect)", async () => {
    let claude: FakeAnthropic | undefined;
    try {
      const ck = fakeKey('spend-claude');
      claude = await startFakeAnthropic({ acceptKeys: [ck] });
      const s = await start({
        endpoints: [
          {
            id: 'claude',
            url: claude.url,
            apiKey: ck,
            provider: 'anthropic',
            meta: { price: { input: 3, output: 15 } },
          },
        ],
      });
      const { data, response } = await client(s)
        .chat.completions.create({ model: 'claude-3-5-haiku-latest', messages })
        .withResponse();
      const u = data.usage!;
      expect(u.prompt_tokens).toBeGreaterThan(0);
      expect(Number(response.headers.get('x-lb-cost'))).toBeCloseTo(
        (u.prompt_tokens * 3 + u.completion_tokens * 15) / 1e6,
        12,
      );
    } finally {
      await claude?.close();
    }
  });

  it('streams without include_usage: lb asks the upstream for usage and the client sees the stream it asked for', async () => {
    const s = await start();
    const n = up.requests.length;
    const text = await rawStream(s, { model: 'gpt-4o-mini', messages, stream: true });
    const sent = up.requests[n].json;
    expect(sent.stream_options).toEqual({ include_usage: true });
    expect(text).not.toContain('usage');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    // The same request straight to the upstream without the ask: the same events, apart from ids and times.
    const direct = await (
      await fetch(`${up.url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${upKey}` },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages, stream: true }),
      })
    ).text();
    const norm = (t: string) =>
      t.replace(/"id":"[^"]*"/g, '"id":""').replace(/"created":\d+/g, '"created":0');
    expect(norm(text).replaceAll('"system_fingerprint":"up"', '')).toBe(
      norm(direct).replaceAll('"system_fingerprint":"up"', ''),
    );
    // …and the cost was counted from the usage lb asked for.
    const stats = (await (await fetch(`${s.url}/stats`)).json()) as any;
    expect(stats.spend.today.total.requests).toBe(1);
    expect(stats.spend.today.total.usd).toBeGreaterThan(0);
  });

  it('streams without include_usage: the `"usage":null` OpenAI adds to every chunk is taken out again', async () => {
    const s = await start();
    const ev = (o: object) => `data: ${JSON.stringify(o)}\n\n`;
    const base = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' };
    up.next({
      type: 'custom',
      handle: (req, res) => {
        const asked = req.json?.stream_options?.include_usage === true;
        const u = asked ? { usage: null } : {};
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(
          ev({ ...base, choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: null }], ...u }),
        );
        res.write(ev({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], ...u }));
        if (asked)
          res.write(
            ev({
              ...base,
              choices: [],
              usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 },
            }),
          );
        res.end('data: [DONE]\n\n');
      },
    });
    const text = await rawStream(s, { model: 'gpt-4o-mini', messages, stream: true });
    expect(text).toBe(
      ev({ ...base, choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: null }] }) +
        ev({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
        'data: [DONE]\n\n',
    );
    const stats = (await (await fetch(`${s.url}/stats`)).json()) as any;
    expect(stats.spend.today.total.usd).toBeCloseTo(CHAT_USD, 12);
  });
});

describe('virtual keys', () => {
  const keys = [
    { name: 'team-a', key: teamA, budgetUsdDay: CHAT_USD * 1.5, tags: [] },
    { name: 'team-b', key: teamB, models: ['gpt-4o-mini'] },
    { name: 'old', key: fakeKey('old'), expires: '2020-01-31' },
  ];

  it("a key's tpm: past its tokens this minute, 429 rate_limit_exceeded with Retry-After; other keys do not", async () => {
    // The upstream answers 21 tokens a call: with tpm 10, a first call in a minute is admitted (0 < 10), the next in
    // that minute refused (21 >= 10). A minute that ends between the two (the clock, not lb) gets one more try.
    const s = await start({
      keys: [
        { name: 'tpm', key: teamA, tpm: 10 },
        { name: 'team-b', key: teamB },
      ],
    });
    const a = client(s, teamA);
    const minute = () => Math.floor(Date.now() / 60_000);
    let r: Awaited<ReturnType<typeof status>> | undefined;
    for (let i = 0; i < 2; i++) {
      const m = minute();
      expect((await status(a.chat.completions.create({ model: 'gpt-4o-mini', messages }))).status).toBe(200);
      r = await status(a.chat.completions.create({ model: 'gpt-4o-mini', messages }));
      if (r.status !== 200 || minute() === m) break;
    }
    expect(r!.status).toBe(429);
    expect(r!.code).toBe('rate_limit_exceeded');
    const retry = Number(r!.headers?.get('retry-after'));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60);
    const b = client(s, teamB);
    expect((await status(b.chat.completions.create({ model: 'gpt-4o-mini', messages }))).status).toBe(200);
  });

  it('a key over its daily budget gets 429 budget_exceeded with Retry-After; other keys do not', async () => {
    const s = await start({ keys });
    const a = client(s, teamA);
    expect((await status(a.chat.completions.create({ model: 'gpt-4o-mini', messages }))).status).toBe(200);
    expect((await status(a.chat.completions.create({ model: 'gpt-4o-mini', messages }))).status).toBe(200);
    const r = await status(a.chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(r.status).toBe(429);
    expect(r.code).toBe('budget_exceeded');
    const retry = Number(r.headers?.get('retry-after'));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(86_400);
    const b = client(s, teamB);
    expect((await status(b.chat.completions.create({ model: 'gpt-4o-mini', messages }))).status).toBe(200);
    // The refusal names the budget and when it resets.
    const raw = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${teamA}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
    });
    const body = (await raw.json()) as any;
    expect(body.error.code).toBe('budget_exceeded');
    expect(body.error.type).toBe('insufficient_quota');
    expect(body.error.message).toMatch(/day/i);
    expect(JSON.stringify(body)).not.toContain(teamA);
  });

  it('a key limited to one model gets 403 model_not_allowed for another', async () => {
    const s = await start({ keys });
    const r = await status(client(s, teamB).chat.completions.create({ model: 'gpt-4o', messages }));
    expect(r).toMatchObject({ status: 403, code: 'model_not_allowed' });
  });

  it('an expired key gets 401 key_expired; an unknown key 401; LB_API_KEYS keys still work', async () => {
    const plain = fakeKey('plain');
    const s = await start({ keys, apiKeys: [plain] });
    const exp = await status(
      client(s, fakeKey('old')).chat.completions.create({ model: 'gpt-4o-mini', messages }),
    );
    expect(exp).toMatchObject({ status: 401, code: 'key_expired' });
    const unknown = await status(
      client(s, 'sk-nope').chat.completions.create({ model: 'gpt-4o-mini', messages }),
    );
    expect(unknown.status).toBe(401);
    const ok = await status(client(s, plain).chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(ok.status).toBe(200);
  });

  it("the key's tags route its requests", async () => {
    const other = await startFakeUpstream({ name: 'eu', acceptKeys: [upKey] });
    try {
      const s = await start({
        keys: [{ name: 'eu-team', key: teamA, tags: ['eu'] }],
        endpoints: [
          { id: 'us', url: up.url, apiKey: upKey, tags: ['us'] },
          { id: 'eu', url: other.url, apiKey: upKey, tags: ['eu'] },
        ],
      });
      for (let i = 0; i < 4; i++) {
        const { response } = await client(s, teamA)
          .chat.completions.create({ model: 'gpt-4o-mini', messages })
          .withResponse();
        expect(response.headers.get('x-lb-endpoint')).toBe('eu');
      }
    } finally {
      await other.close();
    }
  });

  it("a key's rpm is enforced by the client limiter, and every answer says what is left of it", async () => {
    const s = await start({
      keys: [
        { name: 'slow', key: teamA, rpm: 3, models: ['gpt-4o-mini'] },
        { name: 'b', key: teamB },
      ],
    });
    const a = client(s, teamA);
    const limits = (h: Headers | undefined) => [
      h?.get('x-ratelimit-limit-requests'),
      h?.get('x-ratelimit-remaining-requests'),
    ];
    const first = await a.chat.completions.create({ model: 'gpt-4o-mini', messages }).withResponse();
    expect(limits(first.response.headers)).toEqual(['3', '2']);
    // An answer lb gives itself carries them too (this key may not use that model: 403, and the request counted).
    const refused = await status(a.chat.completions.create({ model: 'gpt-4o', messages }));
    expect([refused.status, refused.code]).toEqual([403, 'model_not_allowed']);
    expect(limits(refused.headers)).toEqual(['3', '1']);
    const last = await a.chat.completions.create({ model: 'gpt-4o-mini', messages }).withResponse();
    expect(limits(last.response.headers)).toEqual(['3', '0']);
    const over = await status(a.chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(over.status).toBe(429);
    expect(limits(over.headers)).toEqual(['3', '0']);
    // A key with no limit: no limit headers of lb's (the upstream's would pass through).
    const b = await client(s, teamB)
      .chat.completions.create({ model: 'gpt-4o-mini', messages })
      .withResponse();
    expect(b.response.status).toBe(200);
    expect(limits(b.response.headers)).toEqual([null, null]);
  });

  it('reload applies key changes at once', async () => {
    const s = await start({ keys: [{ name: 'team-a', key: teamA }] });
    expect(
      (await status(client(s, teamB).chat.completions.create({ model: 'gpt-4o-mini', messages }))).status,
    ).toBe(401);
    await s.reload({
      router: { endpoints: [{ id: 'up', url: up.url, apiKey: upKey }] },
      server: { port: 0 },
      spend: { keys: [{ name: 'team-b', key: teamB }] },
    } as never);
    expect(
      (await status(client(s, teamB).chat.completions.create({ model: 'gpt-4o-mini', messages }))).status,
    ).toBe(200);
    expect(
      (await status(client(s, teamA).chat.completions.create({ model: 'gpt-4o-mini', messages }))).status,
    ).toBe(401);
  });
});

describe('admin API keys', () => {
  const adminFetch = (s: LbServer, path: string, init: RequestInit = {}) =>
    fetch(`${s.url}${path}`, {
      ...init,
      headers: { 'content-type': 'application/json', 'x-admin-key': admin, ...(init.headers as object) },
    });

  it('create (secret shown once), use, list, read spend, rotate, revoke → 401', async () => {
    const s = await start({ adminKey: admin, apiKeys: [fakeKey('someone')] });
    expect((await adminFetch(s, '/admin/keys', { headers: { 'x-admin-key': 'wrong' } })).status).toBe(401);
    const made = await adminFetch(s, '/admin/keys', {
      method: 'POST',
      body: JSON.stringify({ name: 'ci', models: ['gpt-4o-mini'], budget_usd_day: 1 }),
    });
    expect(made.status).toBe(201);
    const created = (await made.json()) as any;
    expect(created.key).toMatch(/^sk-lb-/);
    const secret = created.key as string;
    expect(
      (await status(client(s, secret).chat.completions.create({ model: 'gpt-4o-mini', messages }))).status,
    ).toBe(200);

    const list = await (await adminFetch(s, '/admin/keys')).text();
    expect(list).toContain('"ci"');
    expect(list).not.toContain(secret);
    expect(list).not.toMatch(/[0-9a-f]{64}/);

    const one = (await (await adminFetch(s, '/admin/keys/ci')).json()) as any;
    expect(one.spend.today.usd).toBeCloseTo(CHAT_USD, 12);
    expect(one.budgets.usdDay.spent).toBeCloseTo(CHAT_USD, 12);

    const rot = (await (await adminFetch(s, '/admin/keys/ci/rotate', { method: 'POST' })).json()) as any;
    expect(rot.key).toMatch(/^sk-lb-/);
    expect(rot.key).not.toBe(secret);
    expect(
      (await status(client(s, secret).chat.completions.create({ model: 'gpt-4o-mini', messages }))).status,
    ).toBe(401);
    expect(
      (await status(client(s, rot.key).chat.completions.create({ model: 'gpt-4o-mini', messages }))).status,
    ).toBe(200);

    expect((await adminFetch(s, '/admin/keys/ci', { method: 'DELETE' })).status).toBe(200);
    expect(
      (await status(client(s, rot.key).chat.completions.create({ model: 'gpt-4o-mini', messages }))).status,
    ).toBe(401);
    expect((await adminFetch(s, '/admin/keys/ci', { method: 'DELETE' })).status).toBe(404);
    expect(logs.join('')).not.toContain(secret);
  });

  it('one connection carrying several keys (a reverse proxy): each request is its own key, a revoked key 401 at once', async () => {
    const s = await start({
      adminKey: admin,
      keys: [
        { name: 'a', key: teamA, rpm: 50 },
        { name: 'b', key: teamB, rpm: 70 },
      ],
    });
    // One keep-alive connection for every request below.
    const conn = new Client(s.url!, { pipelining: 1 });
    try {
      const send = async (key: string) => {
        const r = await conn.request({
          method: 'POST',
          path: '/v1/chat/completions',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages }),
        });
        await r.body.text();
        return [r.statusCode, r.headers['x-ratelimit-limit-requests']];
      };
      // The same length as team A's key, one character off: not team A.
      const near = `${teamA.slice(0, -1)}${teamA.endsWith('x') ? 'y' : 'x'}`;
      expect(await send(teamA)).toEqual([200, '50']);
      expect(await send(teamB)).toEqual([200, '70']);
      expect(await send(teamA)).toEqual([200, '50']);
      expect((await send(near))[0]).toBe(401);
      expect(await send(teamA)).toEqual([200, '50']);
      expect((await adminFetch(s, '/admin/keys/a', { method: 'DELETE' })).status).toBe(200);
      expect((await send(teamA))[0]).toBe(401);
      expect(await send(teamB)).toEqual([200, '70']);
    } finally {
      await conn.close();
    }
  });
});

describe('two replicas with Redis', { timeout: 60_000 }, () => {
  it("hold a key's budget to within one request each, and share the admin API's keys", async () => {
    redis ??= await startRedis();
    const keysA = [{ name: 'team-a', key: teamA, budgetUsdDay: CHAT_USD * 5 }];
    const r1 = await start({ keys: keysA, redisUrl: redis.url, adminKey: admin });
    const r2 = await start({ keys: keysA, redisUrl: redis.url, adminKey: admin });
    let served = 0;
    for (let i = 0; i < 16; i++) {
      const s = i % 2 ? r2 : r1;
      const r = await status(client(s, teamA).chat.completions.create({ model: 'gpt-4o-mini', messages }));
      if (r.status === 200) served++;
      else expect(r.code).toBe('budget_exceeded');
    }
    // 5 requests fit the budget; each replica may overshoot by one.
    expect(served).toBeGreaterThanOrEqual(5);
    expect(served).toBeLessThanOrEqual(7);
    // A key made on one replica persists in Redis: a replica started after finds it.
    const made = (await (
      await fetch(`${r1.url}/admin/keys`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-admin-key': admin },
        body: JSON.stringify({ name: 'later' }),
      })
    ).json()) as any;
    const r3 = await start({ keys: keysA, redisUrl: redis.url });
    expect(
      (await status(client(r3, made.key).chat.completions.create({ model: 'gpt-4o-mini', messages }))).status,
    ).toBe(200);
    // Revoked on r1: r3 hears of it at its next reload.
    const del = await fetch(`${r1.url}/admin/keys/later`, {
      method: 'DELETE',
      headers: { 'x-admin-key': admin },
    });
    expect(del.status).toBe(200);
    await r3.reload({
      router: { endpoints: [{ id: 'up', url: up.url, apiKey: upKey }] },
      server: { port: 0, redisUrl: redis.url },
      spend: { keys: keysA, prices: PRICES },
    } as never);
    expect(
      (await status(client(r3, made.key).chat.completions.create({ model: 'gpt-4o-mini', messages }))).status,
    ).toBe(401);
  });
});

describe('cheapest strategy', () => {
  it('sends traffic to the endpoint with the lower price, by name in the config', async () => {
    const dear = await startFakeUpstream({ name: 'dear', acceptKeys: [upKey] });
    try {
      const s = await start({
        strategy: 'cheapest',
        endpoints: [
          { id: 'dear', url: dear.url, apiKey: upKey, meta: { price: { input: 5, output: 10 } } },
          { id: 'cheap', url: up.url, apiKey: upKey, meta: { price: { input: 0.5, output: 1 } } },
        ],
      });
      for (let i = 0; i < 5; i++) {
        const { response } = await client(s)
          .chat.completions.create({ model: 'gpt-4o-mini', messages })
          .withResponse();
        expect(['cheap', 'dear']).toContain(response.headers.get('x-lb-endpoint'));
        // The endpoint's price wins over the model's: the cost is the discounted one when cheap answered.
        if (response.headers.get('x-lb-endpoint') === 'cheap')
          expect(Number(response.headers.get('x-lb-cost'))).toBeCloseTo((9 * 0.5 + 12) / 1e6, 12);
      }
      expect(dear.count('/chat/completions')).toBeLessThanOrEqual(1); // exploration may try it once
    } finally {
      await dear.close();
    }
  });
});
