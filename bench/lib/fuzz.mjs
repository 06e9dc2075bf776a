// Black-box fuzzing of a live lb-server: mutated HTTP/1.1 requests written as raw bytes over loopback (methods,
// paths, headers, bodies, framing; requests cut short, oversized or never finished), with ordinary requests in
// between. What must hold: the process stays up, its memory stays flat, every ordinary request still succeeds.
import { connect } from 'node:net';
import { startLbServer } from './proxy.mjs';
import { procStat } from './stats.mjs';
import { startUpstream } from './upstream.mjs';

const CLIENT_KEY = 'sk-fuzz-client-key-0123456789abcdef';
const ADMIN_KEY = 'sk-fuzz-admin-key-0123456789abcdef';

/** xorshift32: the same cases for the same seed. */
export function rng(seed) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
  const int = (n) => Math.floor(next() * n);
  return { next, int, pick: (list) => list[int(list.length)], chance: (p) => next() < p };
}

const CHAT = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
/** Ordinary requests the mutations start from: [method, path, body object or undefined]. */
const TEMPLATES = [
  ['POST', '/v1/chat/completions', CHAT],
  ['POST', '/v1/chat/completions', { ...CHAT, stream: true }],
  ['POST', '/v1/embeddings', { model: 'text-embedding-3-small', input: 'x' }],
  ['POST', '/v1/completions', { model: 'gpt-4o-mini', prompt: 'x' }],
  ['GET', '/v1/models', undefined],
  ['GET', '/health', undefined],
  ['GET', '/healthz', undefined],
  ['GET', '/metrics', undefined],
  ['GET', '/stats', undefined],
  ['GET', '/admin/endpoints', undefined],
  ['POST', '/admin/reload', {}],
  ['POST', '/admin/endpoints/1/disable', {}],
];

const METHODS = [
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'HEAD',
  'OPTIONS',
  'TRACE',
  'CONNECT',
  'PRI',
  'get',
  'FOO',
  'P\tST',
  '',
  'A'.repeat(300),
];
const PATHS = [
  '/v1/../__reset',
  '/v1/%2e%2e/x',
  '/v1/%2E%2E%2F__control',
  '/chat/../../__control',
  '/v1/chat/completions/..',
  '//v1//chat//completions',
  '/v1/chat/completions?stream=true&x=%00',
  '/v1/chat/completions#frag',
  '/%E0%A4%A',
  '/admin/endpoints/%E0%A4%A/disable',
  '/admin/endpoints/..%2f..%2fx/enable',
  '/v1/\u00e9\u{1F600}',
  `/${'a'.repeat(9000)}`,
  '*',
  'http://evil.example/v1/models',
  'v1/models',
  '/v1/models%',
  '/v1/files/../../../etc/passwd',
  '/v1/chat/completions\\..\\x',
];
const HEADER_NAMES = [
  'x-lb-tags',
  'x-api-key',
  'api-key',
  'cookie',
  'origin',
  'sec-fetch-site',
  'expect',
  'upgrade',
  'connection',
  'te',
  'trailer',
  'x-forwarded-for',
  'forwarded',
  'openai-organization',
  'x-request-id',
  'x-lb-deadline-ms',
  'content-encoding',
  'accept-encoding',
  'range',
  'if-none-match',
];
const HEADER_VALUES = [
  '',
  ' ',
  '100-continue',
  'close',
  'h2c',
  'chunked',
  'gzip',
  'a,b,c',
  '\u00ff\u00fe',
  '-1',
  '0',
  '99999999999999999999',
  'null',
  'https://evil.example',
  'cross-site',
  'x'.repeat(20_000),
  'tag1,tag2',
  '../..',
  '%E0%A4%A',
];

/** Mutates bytes of `b` in place: flips, deletions, insertions of JSON punctuation. */
function mutateBytes(r, b) {
  let s = b;
  for (let k = 1 + r.int(4); k > 0; k--) {
    const i = s.length ? r.int(s.length) : 0;
    const op = r.int(4);
    if (op === 0) s = Buffer.concat([s.subarray(0, i), Buffer.from([r.int(256)]), s.subarray(i + 1)]);
    else if (op === 1) s = Buffer.concat([s.subarray(0, i), s.subarray(i + 1 + r.int(8))]);
    else if (op === 2)
      s = Buffer.concat([
        s.subarray(0, i),
        Buffer.from(r.pick(['{', '}', '[', ']', '"', '\\', ',', ':', '\\u00', '\n'])),
        s.subarray(i),
      ]);
    else s = s.subarray(0, i);
  }
  return s;
}

/** A body for a mutated request. */
function fuzzBody(r, base) {
  const json = (o) => Buffer.from(JSON.stringify(o));
  switch (r.int(12)) {
    case 0:
      return mutateBytes(r, json(base ?? CHAT));
    case 1:
      return Buffer.from(Array.from({ length: r.int(400) }, () => r.int(256)));
    case 2: {
      // Nested deep, balanced or not.
      const n = 1_000 + r.int(20_000);
      return Buffer.from(
        `{"model":"gpt-4o-mini","messages":${'['.repeat(n)}${r.chance(0.5) ? ']'.repeat(n) : ''}}`,
      );
    }
    case 3:
      return json({ ...CHAT, model: 'm'.repeat(1_000 + r.int(30_000)) });
    case 4:
      return json({ ...CHAT, model: r.pick([1, null, true, ['gpt-4o'], { a: 1 }, '', '\u0000', '../x']) });
    case 5:
      return json({ ...CHAT, stream: r.pick(['yes', 1, null, {}, 'true']) });
    case 6:
      return Buffer.from('{"m\\u006fdel":"gpt-4o","model":"x","model":"gpt-4o-mini","messages":[]}');
    case 7:
      return Buffer.from(
        `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${'\\ud800'.repeat(200)}"}]}`,
      );
    case 8:
      return json({ ...CHAT, n: 3, logprobs: true, tools: [{ type: 'function' }], max_tokens: -1 });
    case 9:
      return Buffer.alloc(0);
    case 10:
      return Buffer.from('\ufeff{"model":"gpt-4o-mini","messages":[]}');
    default:
      return json(base ?? CHAT);
  }
}

/**
 * One case: the bytes to write, and whether to wait for an answer (`answer`) or go away right after writing
 * (`abort`: a client that disappears mid-request, or a body cut short that the server would wait for).
 */
export function fuzzCase(r) {
  const [m0, p0, b0] = r.pick(TEMPLATES);
  let method = m0;
  let path = p0;
  let body = b0 === undefined ? undefined : Buffer.from(JSON.stringify(b0));
  const headers = [['host', '127.0.0.1']];
  let auth = p0.startsWith('/admin') ? ADMIN_KEY : CLIENT_KEY;
  let contentType = 'application/json';
  let version = 'HTTP/1.1';
  let eol = '\r\n';
  let framing = 'length';
  let mode = 'answer';
  for (let k = 1 + r.int(3); k > 0; k--) {
    switch (r.int(12)) {
      case 0:
        method = r.pick(METHODS);
        break;
      case 1:
        path = r.pick(PATHS);
        break;
      case 2:
        path = `${p0}${r.pick(['?', '/', '%', '%2e', '..', ';x', '\u0001'])}${r.int(1000)}`;
        break;
      case 3:
        for (let n = 1 + r.int(3); n > 0; n--) headers.push([r.pick(HEADER_NAMES), r.pick(HEADER_VALUES)]);
        break;
      case 4:
        auth = r.pick([undefined, 'wrong-key', 'x'.repeat(10_000), `${CLIENT_KEY} ${CLIENT_KEY}`, '']);
        break;
      case 5:
        contentType = r.pick([
          undefined,
          'text/plain',
          'application/json; charset=utf-16',
          'multipart/form-data; boundary=',
          'application/x-www-form-urlencoded',
          '\u00ff',
        ]);
        break;
      case 6:
        body = fuzzBody(r, b0);
        break;
      case 7:
        framing = r.pick([
          'chunked',
          'bad-chunked',
          'both',
          'no-length',
          'two-lengths',
          'negative-length',
          'huge-length',
        ]);
        break;
      case 8:
        // Cut short: the declared length is more than what comes, and the client goes away.
        framing = 'short';
        mode = 'abort';
        break;
      case 9:
        version = r.pick(['HTTP/1.0', 'HTTP/9.9', 'HTTP/1.1 ', 'HTTX/1.1', '']);
        break;
      case 10:
        eol = r.pick(['\n', '\r', '\r\r\n']);
        break;
      default:
        for (let n = 0; n < 150; n++) headers.push([`x-h${n}`, 'v']);
    }
  }
  if (method !== 'GET' && method !== 'HEAD' && body === undefined && r.chance(0.5)) body = fuzzBody(r, CHAT);
  if (auth !== undefined) headers.push(['authorization', `Bearer ${auth}`]);
  if (auth !== undefined && p0.startsWith('/admin')) headers.push(['x-lb-admin-key', auth]);
  if (contentType !== undefined && body !== undefined) headers.push(['content-type', contentType]);
  let payload = body ?? Buffer.alloc(0);
  const len = payload.length;
  if (framing === 'length' && body !== undefined) headers.push(['content-length', String(len)]);
  else if (framing === 'short') headers.push(['content-length', String(len + 1 + r.int(10_000))]);
  else if (framing === 'two-lengths')
    headers.push(['content-length', String(len)], ['content-length', String(len + 5)]);
  else if (framing === 'negative-length') headers.push(['content-length', '-1']);
  else if (framing === 'huge-length') {
    headers.push(['content-length', '1099511627776']);
    mode = 'abort';
  } else if (framing === 'chunked' || framing === 'both' || framing === 'bad-chunked') {
    headers.push(['transfer-encoding', 'chunked']);
    if (framing === 'both') headers.push(['content-length', String(len)]);
    payload =
      framing === 'bad-chunked'
        ? Buffer.concat([
            Buffer.from(`${r.pick(['zz', 'fffffffffffffffff', '-1', ''])}\r\n`),
            payload,
            Buffer.from('\r\n0\r\n\r\n'),
          ])
        : Buffer.concat([Buffer.from(`${len.toString(16)}\r\n`), payload, Buffer.from('\r\n0\r\n\r\n')]);
  }
  const head = `${method} ${path} ${version}${eol}${headers.map(([k, v]) => `${k}: ${v}${eol}`).join('')}${eol}`;
  return { bytes: Buffer.concat([Buffer.from(head, 'latin1'), payload]), mode };
}

/**
 * Writes one case to 127.0.0.1:port; resolves with its outcome: the status code answered, 'closed' (the server
 * closed without an answer), 'silent' (no answer within `waitMs`: a request the server still waits on, such as one
 * never finished), or 'aborted' (the client went away on purpose).
 */
function send(port, { bytes, mode }, waitMs) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let done = false;
    let got = '';
    const finish = (outcome) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve(outcome);
    };
    const t = setTimeout(() => finish('silent'), waitMs);
    s.on('error', () => finish('closed'));
    s.on('close', () => finish(got ? 'garbled' : 'closed'));
    s.on('data', (d) => {
      got += d.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
      if (m) finish(Number(m[1]));
      else if (got.length > 64) finish('garbled');
    });
    s.write(bytes, () => {
      if (mode === 'abort') setImmediate(() => finish('aborted'));
    });
  });
}

/** An ordinary chat completion with the right key: must answer 200. */
async function ordinary(port) {
  const r = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
    body: JSON.stringify(CHAT),
  });
  const text = await r.text();
  return r.status === 200 && text.includes('chat.completion');
}

/**
 * Runs `count` mutated requests (at most `maxSeconds`), `concurrency` at a time, against a fresh lb-server (two
 * endpoints on a local fake upstream, gateway and admin keys set), an ordinary request every `checkEvery`.
 * @param {{ count?: number, maxSeconds?: number, concurrency?: number, checkEvery?: number, seed?: number, waitMs?: number, log?: (s: string) => void }} [o]
 */
export async function runFuzz(o = {}) {
  const count = o.count ?? 100_000;
  const maxMs = (o.maxSeconds ?? 900) * 1000;
  const concurrency = o.concurrency ?? 16;
  const checkEvery = o.checkEvery ?? 2_000;
  const seed = o.seed ?? 1;
  const waitMs = o.waitMs ?? 2_000;
  const up = await startUpstream({ name: 'fuzz-upstream', chunks: 4 });
  const p = await startLbServer([up.url, up.url], {
    extraEnv: { LB_API_KEYS: CLIENT_KEY, LB_ADMIN_KEY: ADMIN_KEY, LOG_LEVEL: 'error' },
  });
  const r = rng(seed);
  const outcomes = {};
  const samples = {};
  const rss = [];
  const checks = { ok: 0, failed: 0 };
  let sent = 0;
  let exited = null;
  p.child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  const t0 = Date.now();
  const sample = () => {
    const st = procStat(p.pid);
    rss.push({ requests: sent, rssMB: st ? Math.round(st.rssMB * 10) / 10 : null });
  };
  try {
    // Warm: the modules every route loads are in before the first memory reading.
    for (let i = 0; i < 50; i++) (await ordinary(p.port)) ? checks.ok++ : checks.failed++;
    sample();
    let nextCheck = checkEvery;
    const worker = async () => {
      while (sent < count && exited === null && Date.now() - t0 < maxMs) {
        const c = fuzzCase(r);
        sent++;
        const out = await send(p.port, c, waitMs);
        const key = typeof out === 'number' ? String(out) : out;
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        // The first few requests of each outcome worth a look (server errors, connections closed unanswered).
        if ((typeof out !== 'number' || out >= 500) && out !== 'aborted') {
          const list = (samples[key] ??= []);
          if (list.length < 3) list.push(c.bytes.subarray(0, 400).toString('latin1'));
        }
        if (sent >= nextCheck) {
          nextCheck += checkEvery;
          (await ordinary(p.port).catch(() => false)) ? checks.ok++ : checks.failed++;
          sample();
          if (sent % (checkEvery * 10) < checkEvery)
            o.log?.(`  … ${sent} requests, RSS ${rss.at(-1).rssMB} MB`);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const up2 = exited === null;
    const finalOk = up2 ? await ordinary(p.port).catch(() => false) : false;
    sample();
    const seconds = (Date.now() - t0) / 1000;
    const mid = rss[Math.floor(rss.length / 2)]?.rssMB ?? null;
    return {
      at: new Date().toISOString(),
      node: process.version,
      seed,
      requests: sent,
      seconds: Math.round(seconds * 10) / 10,
      rps: Math.round(sent / seconds),
      concurrency,
      processUp: up2,
      exited,
      ordinaryChecks: checks,
      finalOrdinaryOk: finalOk,
      rssStartMB: rss[0]?.rssMB ?? null,
      rssMidMB: mid,
      rssEndMB: rss.at(-1)?.rssMB ?? null,
      rssMaxMB: Math.max(...rss.map((x) => x.rssMB ?? 0)),
      rss,
      outcomes,
      samples,
      upstreamRequests: up.stats.requests,
      stderrTail: p.stderr().slice(-2000),
    };
  } finally {
    await p.stop();
    await up.close();
  }
}
