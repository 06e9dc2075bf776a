import { createServer as listener } from 'node:net';
import { fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';
import { usePair } from './pair.js';

// Issue 23 item 8: every endpoint down for a while, then back. Each circuit waits 60 s before its own half-open
// probe; with every candidate open, a request probes the circuit open longest (one at a time, at most one a
// second), so service comes back with the upstreams, not a minute later.

const HALF_OPEN_MS = 60_000;
const pair = usePair();
let server: LbServer;
let client: OpenAI;

beforeAll(async () => {
  ({ server, client } = await pair.serve({
    breaker: { enabled: true, threshold: 2, halfOpenAfterMs: HALF_OPEN_MS },
  }));
});

const ask = (c: OpenAI = client) =>
  c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }).then(
    (r) => ({ status: 200, by: r.system_fingerprint }),
    (e: { status?: number; headers?: Headers }) => ({
      status: e.status ?? 0,
      by: undefined,
      retryAfter: e.headers?.get('retry-after') ?? undefined,
    }),
  );

/** Resolves once the breaker has reported every listed endpoint open (events on the router's bus). */
function opened(ids: string[], on: LbServer = server): Promise<void> {
  const open = new Set<string>();
  return new Promise((resolve) => {
    const off = on.router.on('guard:state', (e) => {
      if (e.guard !== 'breaker') return;
      if (e.to === 'open') open.add(e.endpointId);
      else open.delete(e.endpointId);
      if (ids.every((id) => open.has(id))) {
        off();
        resolve();
      }
    });
  });
}

describe('total outage, then recovery', () => {
  it('the first request after the upstreams return probes the circuit open longest and succeeds; the rest follow', async () => {
    // Down: `a` answers 503, `b` drops the connection.
    pair.a.setDefault({ type: 'status', status: 503 });
    pair.b.setDefault({ type: 'reset' });
    const bothOpen = opened(['a', 'b']);
    while (!(await Promise.race([bothOpen.then(() => true), ask().then(() => false)]))) {}
    await bothOpen;
    const snap = server.router.snapshot().endpoints;
    expect(snap.map((e) => e.guards.breaker?.state)).toEqual(['open', 'open']);
    const halfOpenAt = Math.min(...snap.map((e) => e.guards.breaker?.halfOpenAt as number));

    // Still down, 10 requests a second for 2.5 s: every one fails, and the upstreams see one probe at a
    // time, at most one a second (an upper bound: a slower machine only sends fewer).
    const pace = () => new Promise((r) => setTimeout(r, 100));
    const hits = () => pair.a.count() + pair.b.count();
    const hits0 = hits();
    const t0 = Date.now();
    const during: number[] = [];
    while (Date.now() - t0 < 2_500) {
      during.push((await ask()).status);
      await pace();
    }
    const probes = hits() - hits0;
    // 503 (no endpoint can serve), or the probe's own answer (503 from `a`, 502 for `b`'s dropped connection).
    expect(during.every((s) => s === 503 || s === 502)).toBe(true);
    expect(probes).toBeGreaterThanOrEqual(1);
    expect(probes).toBeLessThanOrEqual(Math.floor((Date.now() - t0) / 1_000) + 1);

    // Back up. Same pace: the first 200 comes within about a second (the next early probe), long before either
    // circuit's own half-open, and every request after it succeeds.
    pair.a.setDefault({ type: 'ok' });
    pair.b.setDefault({ type: 'ok' });
    const back = Date.now();
    const seen: number[] = [];
    let prober: string | undefined;
    while (!seen.includes(200) && Date.now() < halfOpenAt) {
      const r = await ask();
      seen.push(r.status);
      prober = r.by ?? undefined;
      if (!seen.includes(200)) await pace();
    }
    const firstOk = Date.now() - back;
    expect(seen.at(-1)).toBe(200);
    expect(Date.now()).toBeLessThan(halfOpenAt);
    expect(seen.slice(0, -1).every((s) => s === 503)).toBe(true);
    const after = await Promise.all(Array.from({ length: 10 }, ask));
    expect(after.map((r) => r.status)).toEqual(Array(10).fill(200));
    // The endpoint whose probe passed is closed and serves everything; the other waits for its own half-open.
    expect(after.every((r) => r.by === prober)).toBe(true);
    const states = Object.fromEntries(
      server.router.snapshot().endpoints.map((e) => [e.id, e.guards.breaker?.state]),
    );
    expect(states).toEqual(prober === 'a' ? { a: 'closed', b: 'open' } : { a: 'open', b: 'closed' });
    // For the report: how long after the upstreams were back the first 200 came (not asserted: machine speed).
    console.info(`first 200 ${firstOk} ms after recovery; ${seen.length - 1} 503s before it`);
  }, 90_000);
});

/** A port on 127.0.0.1 that refuses connections now (it was free a moment ago). */
async function refusingPort(): Promise<number> {
  const l = listener();
  await new Promise<void>((r) => l.listen(0, '127.0.0.1', r));
  const { port } = l.address() as { port: number };
  await new Promise((r) => l.close(r));
  return port;
}

describe('total outage by refused connections, then recovery', () => {
  it('the upstreams start listening again: the first request after probes and succeeds, long before the half-open', async () => {
    const ports = [await refusingPort(), await refusingPort()];
    const s = pair.track(
      createServer({
        router: {
          endpoints: ports.map((port, i) => ({
            id: `r${i}`,
            url: `http://127.0.0.1:${port}/v1`,
            apiKey: fakeKey(`r${i}`),
            priority: i + 1,
          })),
          backoff: { initialMs: 1, maxMs: 2 },
          // Refuse at once rather than wait for the next probe slot, to see what a refusal says.
          maxWaitMs: 0,
        },
        server: { port: 0 },
        breaker: { enabled: true, threshold: 2, halfOpenAfterMs: HALF_OPEN_MS },
        logDestination: { write: () => true } as never,
      }),
    );
    const c = new OpenAI({ baseURL: `${await s.listen()}/v1`, apiKey: 'x', maxRetries: 0 });
    const bothOpen = opened(['r0', 'r1'], s);
    while (!(await Promise.race([bothOpen.then(() => true), ask(c).then(() => false)]))) {}
    const halfOpenAt = Math.min(
      ...s.router.snapshot().endpoints.map((e) => e.guards.breaker?.halfOpenAt as number),
    );
    // One early probe a second: right after one, a refusal (503) asks the client back for the next (Retry-After 1),
    // not for the end of the open periods a minute away.
    let refused: { status: number; retryAfter?: string } | undefined;
    for (let i = 0; i < 5 && refused?.status !== 503; i++) refused = await ask(c);
    expect(refused).toMatchObject({ status: 503, retryAfter: '1' });
    // Both come back on their ports.
    const ups = await Promise.all(ports.map((port, i) => startFakeUpstream({ name: `r${i}`, port })));
    try {
      let first: { status: number; by: string | null | undefined } | undefined;
      while (Date.now() < halfOpenAt) {
        first = await ask(c);
        if (first.status === 200) break;
        await new Promise((r) => setTimeout(r, 100)); // the 10 requests a second
      }
      expect(first?.status).toBe(200);
      expect(Date.now()).toBeLessThan(halfOpenAt);
      const after = await Promise.all(Array.from({ length: 5 }, () => ask(c)));
      expect(after.map((r) => r.status)).toEqual(Array(5).fill(200));
    } finally {
      await Promise.all(ups.map((u) => u.close()));
    }
  }, 90_000);
});
