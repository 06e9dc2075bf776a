import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AttemptContext, createRouter, type Router } from '@lb/core';
import { collectEvents, type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  configFromFile,
  isConfigValidationError,
  type LbConfig,
  reloadFromFile,
  watchConfig,
} from '../src/index.js';

const KEY = fakeKey('reload');
let a: FakeUpstream;
let b: FakeUpstream;
let c: FakeUpstream;
const dir = mkdtempSync(join(tmpdir(), 'lb-reload-'));
let n = 0;

beforeAll(async () => {
  [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => startFakeUpstream({ name })));
});
afterAll(async () => {
  await Promise.all([a, b, c].map((u) => u.close()));
  rmSync(dir, { recursive: true, force: true });
});

function toml(eps: { name: string; url: string; weight?: number; priority?: number }[], extra = ''): string {
  return `${extra}\n${eps
    .map(
      (e) =>
        `[[endpoints]]\nname = "${e.name}"\nbase_url = "${e.url}"\napi_key = "\${RELOAD_KEY}"\nweight = ${e.weight ?? 1}\npriority = ${e.priority ?? 1}\n`,
    )
    .join('\n')}`;
}
const env = { RELOAD_KEY: KEY };
function fileWith(text: string): string {
  const f = join(dir, `lb-${++n}.toml`);
  writeFileSync(f, text);
  return f;
}

/** One real chat request through the router; resolves to the upstream that answered. */
async function chat(router: Router): Promise<string> {
  const res = await router.execute({ model: 'gpt-4o-mini' }, async (ctx: AttemptContext) => {
    return fetch(`${ctx.endpoint.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ctx.endpoint.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: ctx.upstreamModel, messages: [{ role: 'user', content: 'hi' }] }),
      signal: ctx.signal,
    });
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { system_fingerprint?: string };
  return String(body.system_fingerprint);
}

describe('reloadFromFile', () => {
  it('a reload that changes weights keeps every endpoint statistics and emits config:reloaded', async () => {
    const f = fileWith(
      toml([
        { name: 'a', url: a.url },
        { name: 'b', url: b.url },
      ]),
    );
    const router = createRouter(configFromFile(f, env).router);
    for (let i = 0; i < 6; i++) await chat(router);
    const before = { a: { ...router.getStats('a') }, b: { ...router.getStats('b') } };
    expect((before.a.requests ?? 0) + (before.b.requests ?? 0)).toBe(6);

    const { events } = collectEvents(router, ['config:reloaded']);
    writeFileSync(
      f,
      toml([
        { name: 'a', url: a.url, weight: 5 },
        { name: 'b', url: b.url, weight: 0 },
      ]),
    );
    const r = reloadFromFile(f, router, { env });
    expect(r.ok).toBe(true);
    expect(r.ok && r.changes).toEqual({ added: [], removed: [], changed: ['a', 'b'] });
    expect(events).toEqual([
      { name: 'config:reloaded', payload: { added: [], removed: [], changed: ['a', 'b'] } },
    ]);
    expect(router.getEndpoint('a')?.weight).toBe(5);
    expect(router.getStats('a')).toMatchObject({
      requests: before.a.requests,
      successes: before.a.successes,
    });
    expect(router.getStats('b')).toMatchObject({
      requests: before.b.requests,
      successes: before.b.successes,
    });
    // Weight 0 drains b: new traffic goes to a only.
    for (let i = 0; i < 3; i++) expect(await chat(router)).toBe('a');
  });

  it('an invalid reload changes nothing and reports every error', async () => {
    const f = fileWith(toml([{ name: 'a', url: a.url }]));
    const router = createRouter(configFromFile(f, env).router);
    await chat(router);
    const config = router.config;
    const { events } = collectEvents(router, ['config:reloaded']);
    writeFileSync(f, toml([{ name: 'a', url: 'htp:/x', priority: 11 }], 'stratgy = "random"'));
    const r = reloadFromFile(f, router, { env });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(isConfigValidationError(r.error)).toBe(true);
    expect(r.error.message.split('\n').slice(1)).toEqual([
      '  stratgy: unknown key; did you mean "strategy"?',
      '  endpoints[0].base_url: not a URL: "htp:/x"',
      '  endpoints[0].priority: expected an integer from 1 to 10, received 11',
    ]);
    expect(router.config).toBe(config);
    expect(events).toEqual([]);
    expect(router.getEndpoint('a')?.url).toBe(a.url);
    expect(await chat(router)).toBe('a');
    expect(reloadFromFile(join(dir, 'missing.toml'), router, { env }).ok).toBe(false);
  });

  it('in-flight requests during a reload all complete', async () => {
    a.setDefault({ type: 'ok', delayMs: 150 });
    try {
      const f = fileWith(toml([{ name: 'a', url: a.url }]));
      const router = createRouter(configFromFile(f, env).router);
      const inFlight = Array.from({ length: 5 }, () => chat(router));
      await vi.waitFor(() => expect(router.getStats('a')?.inFlight).toBe(5));
      // a leaves the pool, c arrives.
      writeFileSync(f, toml([{ name: 'c', url: c.url }]));
      const r = reloadFromFile(f, router, { env });
      expect(r.ok && r.changes).toEqual({ added: ['c'], removed: ['a'], changed: [] });
      expect(await chat(router)).toBe('c');
      expect(await Promise.all(inFlight)).toEqual(['a', 'a', 'a', 'a', 'a']);
    } finally {
      a.setDefault({ type: 'ok' });
    }
  });
});

describe('watchConfig', () => {
  let stop: (() => void) | undefined;
  afterEach(() => stop?.());

  it('reloads a changed file, rejects an invalid one, and skips unchanged content', async () => {
    const f = fileWith(toml([{ name: 'a', url: a.url }]));
    const router = createRouter(configFromFile(f, env).router);
    const reloads: LbConfig[] = [];
    const errors: Error[] = [];
    stop = watchConfig(f, router, {
      env,
      debounceMs: 20,
      pollMs: 50,
      onReload: (cfg) => reloads.push(cfg),
      onError: (e) => errors.push(e),
    });

    writeFileSync(f, toml([{ name: 'a', url: a.url, weight: 4 }], 'max_retries = 1'));
    await vi.waitFor(() => expect(reloads).toHaveLength(1), { timeout: 5000, interval: 20 });
    expect(router.getEndpoint('a')?.weight).toBe(4);
    expect(router.config.maxRetries).toBe(1);

    writeFileSync(f, toml([{ name: 'a', url: 'not a url' }]));
    await vi.waitFor(() => expect(errors).toHaveLength(1), { timeout: 5000, interval: 20 });
    expect(isConfigValidationError(errors[0])).toBe(true);
    expect(errors[0].message).toContain('endpoints[0].base_url: not a URL: "not a url"');
    expect(router.getEndpoint('a')?.url).toBe(a.url);

    writeFileSync(f, toml([{ name: 'b', url: b.url }]));
    await vi.waitFor(() => expect(reloads).toHaveLength(2), { timeout: 5000, interval: 20 });
    expect(router.endpoints.map((e) => e.id)).toEqual(['b']);
    expect(await chat(router)).toBe('b');
    expect(errors).toHaveLength(1);
  });

  it('validates its options, naming the received value', () => {
    const router = createRouter({ endpoints: [{ id: 'a', url: a.url }] });
    expect(() => watchConfig(join(dir, 'x.toml'), router, { debounceMs: -1 })).toThrow(
      'watchConfig: debounceMs must be a number >= 0 (ms), received -1',
    );
  });
});
