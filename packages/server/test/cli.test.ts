import { mkdtempSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cliTimeout, measureCliStart, outputMatches, type Proc, runCli, spawnServer } from './cli-helpers.js';

// Tests here start up to ten lb-server processes one after another: their time limit follows the machine's pace.
await measureCliStart();
vi.setConfig({ testTimeout: cliTimeout(12), hookTimeout: cliTimeout(4) });

const keys = { a: fakeKey('one'), b: fakeKey('two'), c: fakeKey('three') };
const ADMIN_KEY = 'lb-admin-key-for-cli-tests';
/** A POST to an admin route as an operator sends it: the admin key and a JSON content type. */
const ADMIN_POST = {
  method: 'POST',
  headers: { 'x-admin-key': ADMIN_KEY, 'content-type': 'application/json' },
} as const;

function envFor(ups: FakeUpstream[]): Record<string, string> {
  const env: Record<string, string> = {};
  ups.forEach((u, i) => {
    const n = i + 1;
    env[`OPENAI_API_KEY_${n}`] = Object.values(keys)[i];
    env[`OPENAI_BASE_URL_${n}`] = u.url;
    env[`OPENAI_NAME_${n}`] = u.name;
    env[`OPENAI_PRIORITY_${n}`] = String(n);
  });
  return env;
}

let a: FakeUpstream;
let b: FakeUpstream;
let c: FakeUpstream;
let proc: Proc;
let client: OpenAI;

beforeAll(async () => {
  [a, b, c] = await Promise.all([
    startFakeUpstream({ name: 'a', acceptKeys: [keys.a] }),
    startFakeUpstream({ name: 'b', acceptKeys: [keys.b] }),
    startFakeUpstream({ name: 'c', acceptKeys: [keys.c] }),
  ]);
  proc = await spawnServer({
    ...envFor([a, b, c]),
    TIMEOUT: '800',
    STREAM_IDLE_TIMEOUT: '500',
    STREAM_FIRST_BYTE_TIMEOUT: '800',
    OPENAI_BACKOFF_MS: '1',
    OPENAI_MAX_RETRIES: '2',
    OPENAI_CIRCUIT_BREAKER: 'false',
    LB_ADMIN_KEY: ADMIN_KEY,
  });
  client = new OpenAI({ baseURL: `${proc.url}/v1`, apiKey: 'anything', maxRetries: 0 });
});

afterAll(async () => {
  proc?.child.kill('SIGKILL');
  await Promise.all([a?.close(), b?.close(), c?.close()]);
});

const ask = () =>
  client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

describe('lb-server (built, spawned)', () => {
  it('prints where it listens and one line per endpoint with masked keys', () => {
    const out = proc.out();
    expect(out).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
    for (const name of ['a', 'b', 'c']) expect(out).toMatch(new RegExp(`• ${name}\\s`));
    for (const k of Object.values(keys)) {
      expect(out).not.toContain(k);
      expect(out).toContain(`${k.slice(0, 7)}...${k.slice(-4)}`);
    }
  });

  it('respects priority and fails over on 500, reset and timeout', async () => {
    expect((await ask()).system_fingerprint).toBe('a');
    a.next({ type: 'status', status: 500 });
    expect((await ask()).system_fingerprint).toBe('b');
    a.next({ type: 'reset' });
    expect((await ask()).system_fingerprint).toBe('b');
    a.next({ type: 'hang' });
    expect((await ask()).system_fingerprint).toBe('b');
  });

  it('streams unbuffered: the first chunk arrives while the upstream still holds the rest', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    a.next({
      type: 'custom',
      handle: (_req, res: ServerResponse) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const ev = (content: string) =>
          `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
        res.write(ev('first'));
        held.then(() => res.end(`${ev(' last')}data: [DONE]\n\n`));
      },
    });
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [] });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value.choices[0].delta.content).toBe('first');
    release();
    const rest: string[] = [];
    for (let r = await it.next(); !r.done; r = await it.next())
      rest.push(r.value.choices[0].delta.content ?? '');
    expect(rest).toEqual([' last']);
  });

  it('fails a stream over before the first byte, and ends a mid-stream drop with an SDK error', async () => {
    a.next({ type: 'stream', errorEvent: { error: { message: 'Overloaded', type: 'overloaded_error' } } });
    let text = '';
    for await (const ch of await client.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [],
    }))
      text += ch.choices[0]?.delta?.content ?? '';
    expect(text).toBe('Hello from b');

    a.next({ type: 'stream', chunks: ['x', 'y', 'z'], dropAfter: 2, intervalMs: 20 });
    const s = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [] });
    const err = await (async () => {
      for await (const _ of s) {
      }
    })().catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
  });

  it('passes multipart uploads', async () => {
    const file = new File([Buffer.from('fake wav')], 'hello.wav', { type: 'audio/wav' });
    const t = await client.audio.transcriptions.create({ file, model: 'whisper-1' });
    expect(t.text).toBe('a heard hello.wav');
  });

  it('answers 502 when every endpoint fails, 503 when none is available, in OpenAI shape', async () => {
    a.next({ type: 'status', status: 500 });
    b.next({ type: 'status', status: 500 });
    c.next({ type: 'status', status: 500 });
    const e1 = await ask().catch((e) => e);
    expect(e1).toBeInstanceOf(OpenAI.APIError);
    expect(e1.status).toBe(502);
    for (const id of ['a', 'b', 'c'])
      expect((await fetch(`${proc.url}/admin/endpoints/${id}/disable`, ADMIN_POST)).status).toBe(200);
    const e2 = await ask().catch((e) => e);
    expect(e2.status).toBe(503);
    expect(e2.error).toMatchObject({ type: 'server_error', code: 'no_healthy_endpoint' });
    const health = await fetch(`${proc.url}/health`);
    expect(health.status).toBe(503);
    for (const id of ['a', 'b', 'c']) await fetch(`${proc.url}/admin/endpoints/${id}/enable`, ADMIN_POST);
    expect((await ask()).system_fingerprint).toBe('a');
  });

  it('serves health, metrics and stats with no key in them', async () => {
    const texts = await Promise.all(
      ['/health', '/v1/health', '/metrics', '/stats'].map(async (p) => {
        const r = await fetch(proc.url + p);
        expect(r.status).toBe(200);
        return r.text();
      }),
    );
    expect(JSON.parse(texts[0]).status).toBe('healthy');
    expect(texts[2]).toMatch(/^lb_/m);
    for (const t of texts) for (const k of Object.values(keys)) expect(t).not.toContain(k);
  });

  it('refuses bad input with clear 4xx and keeps serving', async () => {
    const post = (body: string, ct = 'application/json') =>
      fetch(`${proc.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': ct }, body });
    expect((await post('{"model":')).status).toBe(400);
    expect((await post('hello', 'text/plain')).status).toBe(415);
    expect((await post('[1,2]')).status).toBe(400);
    expect((await post(JSON.stringify({ model: 'x', pad: 'y'.repeat(26 * 1024 * 1024) }))).status).toBe(413);
    expect((await ask()).system_fingerprint).toBe('a');
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM during 50 in-flight streams loses none and exits 0', async () => {
    const up = await startFakeUpstream({
      name: 's',
      defaultBehaviour: { type: 'stream', chunks: ['1', '2', '3', '4', '5'], intervalMs: 60 },
    });
    const p = await spawnServer({
      OPENAI_API_KEY_1: keys.a,
      OPENAI_BASE_URL_1: up.url,
      SHUTDOWN_TIMEOUT: '10000',
    });
    try {
      const cl = new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'x', maxRetries: 0 });
      let started = 0;
      let signalled!: () => void;
      const allStarted = new Promise<void>((r) => (signalled = r));
      const runs = Array.from({ length: 50 }, async () => {
        const s = await cl.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [] });
        let text = '';
        let first = true;
        for await (const ch of s) {
          if (first && ++started === 50) signalled();
          first = false;
          text += ch.choices[0]?.delta?.content ?? '';
        }
        return text;
      });
      await allStarted;
      p.child.kill('SIGTERM');
      const texts = await Promise.all(runs);
      expect(texts).toEqual(Array(50).fill('12345'));
      expect(await p.exit).toBe(0);
      const refused = await fetch(`${p.url}/`).catch((e) => e);
      expect(refused).toBeInstanceOf(Error);
    } finally {
      p.child.kill('SIGKILL');
      await up.close();
    }
  });
});

describe('lb-server commands', () => {
  it('says how to configure it when nothing is configured, and exits 1', async () => {
    const r = await runCli([], {});
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/nothing is configured/);
    expect(r.out).toMatch(/--demo/);
  });

  it('an invalid environment config: every problem with its path, no key echoed, exit 1 (also with --demo=auto)', async () => {
    const env = {
      OPENAI_API_KEY_1: keys.a,
      OPENAI_BASE_URL_1: 'htp:/x',
      OPENAI_API_KEY_2: keys.b,
      OPENAI_BASE_URL_2: 'http://127.0.0.1:1/v1',
      OPENAI_PRIORITY_2: 'first',
    };
    for (const args of [[], ['--demo=auto']]) {
      const r = await runCli(args, env);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.out).toMatch(/invalid config \(2 error\(s\)\)/);
      expect(r.out).toMatch(/OPENAI_BASE_URL_1.*htp:\/x/);
      expect(r.out).toMatch(/OPENAI_PRIORITY_2/);
      expect(r.out).not.toContain(keys.a);
      expect(r.out).not.toContain(keys.b);
      // A config is present: --demo=auto does not fall back to the demo.
      expect(r.out).not.toMatch(/Demo mode/);
    }
  });

  it('--demo=auto serves the configured endpoints when there are some', async () => {
    const p = await spawnServer(envFor([a]), ['--demo=auto']);
    try {
      expect(p.out()).not.toMatch(/Demo mode/);
      expect(p.out()).toMatch(/1 endpoint\(s\)/);
      expect(p.out()).toContain(`• ${a.name}`);
    } finally {
      p.child.kill('SIGTERM');
      expect(await p.exit).toBe(0);
    }
  });

  it('SIGTERM sent the moment the ready line appears drains and exits 0 (signal handlers come first)', async () => {
    for (let i = 0; i < 5; i++) {
      const p = await spawnServer(envFor([a]));
      p.child.kill('SIGTERM');
      expect(await p.exit, `try ${i + 1}: ${p.out()}`).toBe(0);
      expect(p.out()).toMatch(/SIGTERM received/);
    }
  });

  it('loads pino only once a line is logged (nothing at the default level while all goes well)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-pino-'));
    const probe = join(dir, 'probe.cjs');
    writeFileSync(
      probe,
      `process.on('exit', () => process.stderr.write('pino loaded: ' + Object.keys(require.cache).some((k) => /[\\\\/]pino[\\\\/]pino\\.js$/.test(k)) + '\\n'));`,
    );
    const env = { ...envFor([a]), NODE_OPTIONS: `--require ${probe}` };
    const quiet = await spawnServer(env);
    const ok = await fetch(`${quiet.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(ok.status).toBe(200);
    quiet.child.kill('SIGTERM');
    expect(await quiet.exit).toBe(0);
    expect(quiet.out()).toMatch(/pino loaded: false/);
    // A failing upstream is worth a warning: pino comes in and writes it.
    const noisy = await spawnServer({
      ...env,
      OPENAI_API_KEY_1: keys.a,
      OPENAI_BASE_URL_1: 'http://127.0.0.1:9/v1',
      OPENAI_PRIORITY_1: '1',
      OPENAI_MAX_RETRIES: '0',
    });
    const bad = await fetch(`${noisy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }),
    });
    expect(bad.status).toBeGreaterThanOrEqual(500);
    noisy.child.kill('SIGTERM');
    expect(await noisy.exit).toBe(0);
    expect(noisy.out()).toMatch(/"msg":"upstream attempt failed"/);
    expect(noisy.out()).toMatch(/pino loaded: true/);
  });

  it('LB_REDIS_URL: the banner names the shared store without its password; a Redis that is away is warned about', async () => {
    const p = await spawnServer({
      OPENAI_API_KEY_1: keys.a,
      OPENAI_BASE_URL_1: 'http://127.0.0.1:9/v1',
      LB_REDIS_URL: 'redis://:pw-sekrit-value@127.0.0.1:1/0',
    });
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    expect(p.out()).toContain('rate limits and breaker changes shared in Redis: redis://:***@127.0.0.1:1/0');
    expect(p.out()).toContain('not ready after 1 s: starting on local state');
    expect(p.out()).not.toContain('pw-sekrit');
  });

  it('check probes every endpoint and prints a table', async () => {
    const ok = await startFakeUpstream({ name: 'ok', acceptKeys: [keys.a] });
    const bad = await startFakeUpstream({ name: 'bad', acceptKeys: ['something-else-entirely'] });
    try {
      const r = await runCli(['check'], {
        OPENAI_API_KEY_1: keys.a,
        OPENAI_BASE_URL_1: ok.url,
        OPENAI_NAME_1: 'good-one',
        OPENAI_API_KEY_2: keys.b,
        OPENAI_BASE_URL_2: bad.url,
        OPENAI_NAME_2: 'bad-one',
      });
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/good-one.*✓ ok\s+200/);
      expect(r.out).toMatch(/bad-one.*✗ key rejected \(401\)/);
      expect(r.out).not.toContain(keys.a);
      expect(r.out).not.toContain(keys.b);
      expect(ok.count('/models')).toBe(1);
    } finally {
      await Promise.all([ok.close(), bad.close()]);
    }
  });

  it('--demo starts simulated upstreams and prints a curl line', async () => {
    const p = await spawnServer({}, ['--demo']);
    try {
      expect(p.out()).toMatch(/curl http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/);
      for (const name of ['healthy', 'flaky', 'slow']) expect(p.out()).toContain(`• ${name}`);
      const res = await fetch(`${p.url}/v1/models`);
      expect((await res.json()).data.length).toBeGreaterThan(0);
    } finally {
      p.child.kill('SIGTERM');
      expect(await p.exit).toBe(0);
    }
  });
});

describe('reload', () => {
  it('SIGHUP and POST /admin/reload re-read the config file', async () => {
    const [p1, p2] = await Promise.all([
      startFakeUpstream({ name: 'p1' }),
      startFakeUpstream({ name: 'p2' }),
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'lb-server-'));
    const file = join(dir, 'lb.json');
    const write = (first: string) =>
      writeFileSync(
        file,
        JSON.stringify({
          endpoints: [
            { name: 'p1', base_url: p1.url, api_key: keys.a, priority: first === 'p1' ? 1 : 2 },
            { name: 'p2', base_url: p2.url, api_key: keys.b, priority: first === 'p2' ? 1 : 2 },
          ],
        }),
      );
    write('p1');
    const p = await spawnServer({ LB_ADMIN_KEY: ADMIN_KEY }, ['--config', file]);
    try {
      const cl = new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'x', maxRetries: 0 });
      const who = async () =>
        (await cl.chat.completions.create({ model: 'gpt-4o-mini', messages: [] })).system_fingerprint;
      expect(await who()).toBe('p1');
      write('p2');
      p.child.kill('SIGHUP');
      await outputMatches(p, /reloaded/);
      expect(await who()).toBe('p2');
      write('p1');
      const res = await fetch(`${p.url}/admin/reload`, ADMIN_POST);
      expect(res.status).toBe(200);
      expect((await res.json()).changed.sort()).toEqual(['p1', 'p2']);
      expect(await who()).toBe('p1');
    } finally {
      p.child.kill('SIGKILL');
      await Promise.all([p1.close(), p2.close()]);
    }
  });
});

describe('what a new user meets first', () => {
  it('--help names every config format', async () => {
    const r = await runCli(['--help'], {});
    expect(r.code).toBe(0);
    expect(r.out).toContain('TOML, JSON or YAML config file');
  });

  it('--demo=auto (pnpm start) says it proxies for real, and why, when a key is in the environment', async () => {
    const up = await startFakeUpstream({ name: 'real' });
    try {
      const p = await spawnServer({ OPENAI_API_KEY: keys.a, OPENAI_BASE_URL: up.url }, ['--demo=auto']);
      p.child.kill('SIGTERM');
      expect(await p.exit).toBe(0);
      expect(p.out()).toMatch(
        /mode: proxy, not demo: --demo=auto found endpoints configured in the environment \(fallback-keys\), \.env included, so requests go to them with their keys/,
      );
      expect(p.out()).not.toContain(keys.a);
    } finally {
      await up.close();
    }
  });

  it('--demo=auto with nothing configured says it runs the demo, and why', async () => {
    const p = await spawnServer({}, ['--demo=auto']);
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    expect(p.out()).toContain('mode: demo (--demo=auto, and nothing is configured');
  });

  it('check skips disabled endpoints, says so, and does not count them as failures', async () => {
    const ok = await startFakeUpstream({ name: 'ok' });
    const off = await startFakeUpstream({ name: 'off', defaultBehaviour: { type: 'status', status: 500 } });
    try {
      const r = await runCli(['check'], {
        OPENAI_API_KEY_1: keys.a,
        OPENAI_BASE_URL_1: ok.url,
        OPENAI_NAME_1: 'on-one',
        OPENAI_API_KEY_2: keys.b,
        OPENAI_BASE_URL_2: off.url,
        OPENAI_NAME_2: 'off-one',
        OPENAI_ENABLED_2: 'false',
      });
      expect(r.out).toContain('config ok: 2 endpoint(s); skipping 1 disabled (off-one).');
      expect(r.out).toContain('all 1 endpoint(s) answered');
      expect(r.code).toBe(0);
      expect(off.requests.length).toBe(0);
    } finally {
      await Promise.all([ok.close(), off.close()]);
    }
  });

  it('with the breaker off, outlier ejection still takes a dead endpoint out after 5 failures', async () => {
    const dead = await startFakeUpstream({ name: 'dead', defaultBehaviour: { type: 'status', status: 500 } });
    const live = await startFakeUpstream({ name: 'live' });
    const p = await spawnServer({ ...envFor([dead, live]), OPENAI_CIRCUIT_BREAKER: 'false' });
    try {
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${p.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
        });
        expect(res.headers.get('x-lb-endpoint')).toBe('live');
        await res.arrayBuffer();
      }
      expect(dead.count('/chat/completions')).toBe(5);
      const health = await (await fetch(`${p.url}/health`)).json();
      expect(health.endpoints[0]).toMatchObject({ id: 'dead', state: 'unhealthy' });
      expect(health.endpoints[0].breaker).toBeUndefined();
      expect(health.endpoints[0].reason).toMatch(/^outlier: 5 consecutive failures/);
    } finally {
      p.child.kill('SIGTERM');
      expect(await p.exit).toBe(0);
      await Promise.all([dead.close(), live.close()]);
    }
  });

  it('demo embeddings decode with the SDK default (encoding_format=base64)', async () => {
    const p = await spawnServer({}, ['--demo']);
    try {
      const client = new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'unused', maxRetries: 3 });
      const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' });
      expect(r.data[0].embedding.map((x) => Math.round(x * 10) / 10)).toEqual([0.1, 0.2, 0.3]);
      const plain = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: 'hi',
        encoding_format: 'float',
      });
      expect(plain.data[0].embedding).toEqual([0.1, 0.2, 0.3]);
    } finally {
      p.child.kill('SIGTERM');
      expect(await p.exit).toBe(0);
    }
  });
});
