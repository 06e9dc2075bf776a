import { fakeKey, OVERLOADED_MID_STREAM, startFakeAnthropic, streamedText, timedText } from '@lb/testing';
import OpenAI from 'openai';
import { describe, expect, it, vi } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';
import { usePair } from './pair.js';

// Stream probation: once an endpoint's stream broke after its first byte, its next streams are held back whole, so
// that a repeat break fails over (the client never sees it) and a clean stream ends the probation.
const pair = usePair();
const { keys } = pair;
const ask = {
  model: 'gpt-4o-mini',
  stream: true as const,
  messages: [{ role: 'user' as const, content: 'x' }],
};

/**
 * For `vi.waitFor` on a state the server reaches by itself (a stream's end counted, a gauge updated): its default
 * second is a loaded machine's blink. Only a hang guard: the wait ends when the state is reached.
 */
const SETTLE = { timeout: 30_000, interval: 10 };

function start(holdMs?: number, maxBytes?: number, logs?: string[]) {
  return pair.serve(
    {
      breaker: { enabled: false },
      server: { streamProbationHoldMs: holdMs, streamProbationMaxBytes: maxBytes },
    },
    logs,
  );
}

/** `lb_stream_probation_held_bytes` from /metrics. */
async function heldBytes(server: LbServer): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const m = /^lb_stream_probation_held_bytes (\d+)$/m.exec(text);
  if (!m) throw new Error('no lb_stream_probation_held_bytes in /metrics');
  return Number(m[1]);
}

const onProbation = (server: LbServer, id: string) =>
  server.router.snapshot().endpoints.find((e) => e.id === id)?.streamProbation;

/** Puts `a` on probation: a stream that breaks after its second piece, which the client sees break. */
async function breakOne(client: OpenAI): Promise<void> {
  pair.a.next({ type: 'stream', chunks: ['one', ' two', ' three'], intervalMs: 30, dropAfter: 2 });
  await expect(streamedText(await client.chat.completions.create(ask))).rejects.toThrow();
}

/** A stream with one content chunk, then `event` 30 ms later (`end`: and the end; else the stream stays open). */
function contentThen(event: string, end: boolean) {
  return {
    type: 'custom' as const,
    handle: (_req: unknown, res: import('node:http').ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' };
      res.write(
        `data: ${JSON.stringify({ ...chunk, choices: [{ index: 0, delta: { content: 'Hel' } }] })}\n\n`,
      );
      setTimeout(() => (end ? res.end(event) : res.write(event)), 30);
    },
  };
}

/** A stream of `pieces` that sends the first two at once and the rest (then its end) once `release` resolves. */
function gated(pieces: string[], release: Promise<void>) {
  return {
    type: 'custom' as const,
    handle: (_req: unknown, res: import('node:http').ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const base = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini' };
      const send = (delta: object, finish: string | null = null) =>
        res.write(
          `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`,
        );
      for (const p of pieces.slice(0, 2)) send({ content: p });
      void release.then(() => {
        for (const p of pieces.slice(2)) send({ content: p });
        send({}, 'stop');
        res.end('data: [DONE]\n\n');
      });
    },
  };
}

/**
 * Asks for a stream that `a` answers in two parts (two pieces, then the rest once let go): resolves once lb-server
 * holds the first part and nothing (not even the answer's head) has reached the client, then lets the rest come.
 * Returns what the client got. The order of events shows the hold, whatever the machine's speed.
 */
async function heldWhole(client: OpenAI, server: LbServer) {
  let release!: () => void;
  pair.a.next(gated(['p', 'q', 'r', 's'], new Promise<void>((r) => (release = r))));
  let headed = false;
  const held = client.chat.completions
    .create(ask)
    .withResponse()
    .then((x) => {
      headed = true;
      return x;
    });
  await vi.waitFor(async () => expect(await heldBytes(server)).toBeGreaterThan(100), SETTLE);
  expect(headed).toBe(false);
  release();
  const { data, response } = await held;
  return { text: await streamedText(data), response };
}

describe('stream probation', () => {
  it('fails a repeat break over to the next endpoint, then a clean held stream ends the probation', async () => {
    const { client, server } = await start();
    expect(onProbation(server, 'a')).toBe(false);
    await breakOne(client);
    expect(onProbation(server, 'a')).toBe(true);
    const health = await (await fetch(`${server.url}/health`)).json();
    expect(health.endpoints.find((e: { id: string }) => e.id === 'a').streamProbation).toBe(true);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('lb_endpoint_stream_probation{endpoint="a"} 1');
    expect(metrics).toContain('lb_endpoint_stream_probation{endpoint="b"} 0');

    // Broken again after its first piece: held back, so the client gets b's whole answer instead.
    pair.a.next({ type: 'stream', chunks: ['one', ' two', ' three'], intervalMs: 30, dropAfter: 2 });
    const { data, response } = await client.chat.completions.create(ask).withResponse();
    expect(await streamedText(data)).toBe('Hello from b');
    expect(response.headers.get('x-lb-endpoint')).toBe('b');
    expect(response.headers.get('x-lb-attempts')).toBe('2');
    expect(onProbation(server, 'a')).toBe(true);

    // a is well again: its stream is held until it ends, then arrives whole.
    const held = await heldWhole(client, server);
    expect(held.text).toBe('pqrs');
    expect(held.response.headers.get('x-lb-endpoint')).toBe('a');
    expect(onProbation(server, 'a')).toBe(false);

    // Out of probation: the next stream is live again, its pieces as far apart as the upstream sent them.
    pair.a.next({ type: 'stream', chunks: ['p', 'q', 'r', 's'], intervalMs: 120 });
    const live = await timedText(await client.chat.completions.create(ask));
    expect(live.text).toBe('pqrs');
    expect(live.at.at(-1)).toBeGreaterThanOrEqual(300);
  });

  it('an error event mid-stream puts the endpoint on probation even when the client leaves at it', async () => {
    const { client, server } = await start();
    const ends: boolean[] = [];
    server.router.on('attempt:end', (e) => ends.push(e.ok));
    // Content, then an error event, and the upstream keeps the stream open: the SDK raises and hangs up first.
    pair.a.next(
      contentThen(`data: ${JSON.stringify({ error: { message: 'boom', type: 'server_error' } })}\n\n`, false),
    );
    await expect(streamedText(await client.chat.completions.create(ask))).rejects.toThrow(/boom/);
    await vi.waitFor(() => expect(ends).toEqual([false]), SETTLE);
    expect(onProbation(server, 'a')).toBe(true);
  });

  it('an `event: error` mid-stream (Responses API form) counts as a broken stream too', async () => {
    const { client, server } = await start();
    const ends: boolean[] = [];
    server.router.on('attempt:end', (e) => ends.push(e.ok));
    const typed = `event: error\ndata: ${JSON.stringify({ type: 'error', code: 'server_error', message: 'boom' })}\n\n`;
    pair.a.next(contentThen(typed, true));
    // The SDK has no error to raise here (no `error` key): the stream ends, and only the gateway can tell.
    await streamedText(await client.chat.completions.create(ask)).catch(() => undefined);
    await vi.waitFor(() => expect(ends).toEqual([false]), SETTLE);
    expect(onProbation(server, 'a')).toBe(true);

    // On probation, the same event in a held stream fails over.
    pair.a.next(contentThen(typed, true));
    const { data, response } = await client.chat.completions.create(ask).withResponse();
    expect(await streamedText(data)).toBe('Hello from b');
    expect(response.headers.get('x-lb-attempts')).toBe('2');
  });

  it('fails over when a held stream sends an error event after its first piece', async () => {
    const { client, server } = await start();
    await breakOne(client);
    const failures: string[] = [];
    server.router.on('attempt:failure', (e) => failures.push(`${e.endpointId}:${e.status}`));
    pair.a.next({
      type: 'stream',
      dropAfter: 1,
      errorEvent: { error: { message: 'overloaded', type: 'server_error', code: null, param: null } },
    });
    expect(await streamedText(await client.chat.completions.create(ask))).toBe('Hello from b');
    expect(failures).toEqual(['a:502']);
  });

  it("when a probation ends, the endpoint's other held streams go live at once", async () => {
    const logs: string[] = [];
    const { client, server } = await start(undefined, undefined, logs);
    await breakOne(client);
    // Two streams of a, both held: a short one (ends at ~100 ms) and a long one (pieces 120 ms apart, to ~600 ms).
    let n = 0;
    pair.a.setDefault(() =>
      n++ === 0
        ? { type: 'stream', chunks: ['s', 'h', 'o'], intervalMs: 50 }
        : { type: 'stream', chunks: ['1', '2', '3', '4', '5', '6'], intervalMs: 120 },
    );
    try {
      const short = client.chat.completions.create(ask);
      await vi.waitFor(() => expect(n).toBe(1), SETTLE);
      const long = client.chat.completions.create(ask);
      await vi.waitFor(() => expect(n).toBe(2), SETTLE);
      expect((await timedText(await short)).text).toBe('sho');
      // The short one ended cleanly: the probation is over, and the long one went live with what it held, the
      // rest arriving as the upstream sends it (not all at once at its end).
      const l = await timedText(await long);
      expect(l.text).toBe('123456');
      expect(l.at.at(-1)! - l.at[0]!).toBeGreaterThanOrEqual(300);
    } finally {
      pair.a.setDefault({ type: 'ok' });
    }
    expect(onProbation(server, 'a')).toBe(false);
    expect(await heldBytes(server)).toBe(0);
    const said = logs.map((l) => JSON.parse(l).msg);
    expect(said).toContain('endpoint on stream probation: a stream broke after its first byte');
    expect(said).toContain('endpoint off stream probation');
  });

  it('lets a held stream go live once the hold time is up', async () => {
    const { client, server } = await start(150);
    await breakOne(client);
    pair.a.next({ type: 'stream', chunks: ['1', '2', '3', '4', '5', '6'], intervalMs: 100 });
    const s = await timedText(await client.chat.completions.create(ask));
    expect(s.text).toBe('123456');
    // The pieces sent within the hold (at 0 and 100 ms upstream) arrive together when it lets go at 150 ms; the
    // rest (to 500 ms) as the upstream sends them.
    expect(s.at[1]).toBeLessThan(50);
    expect(s.at.at(-1)).toBeGreaterThanOrEqual(250);
    expect(onProbation(server, 'a')).toBe(false);
  });

  it('with holding off (0), a repeat break reaches the client', async () => {
    const { client, server } = await start(0);
    await breakOne(client);
    expect(onProbation(server, 'a')).toBe(true);
    await breakOne(client);
  });

  it('concurrent streams on probation each arrive whole or fail over; every hold is released', async () => {
    const { client, server } = await start();
    await breakOne(client);
    // Every other stream of a breaks after its second piece; the rest are well, and end only once all 24 reached a
    // and the 12 broken ones failed over to b (a clean end lifts the probation: every break must come under it,
    // however slow the machine).
    let n = 0;
    let failedOver = 0;
    let release!: () => void;
    const breaksDone = new Promise<void>((r) => (release = r));
    const check = () => n >= 24 && failedOver >= 12 && release();
    pair.a.setDefault(() => {
      n++;
      check();
      return n % 2 === 1
        ? { type: 'stream', chunks: ['one', ' two', ' three'], intervalMs: 20, dropAfter: 2 }
        : gated(['x', 'y', 'z'], breaksDone);
    });
    pair.b.setDefault(() => {
      failedOver++;
      check();
      return { type: 'ok' };
    });
    try {
      const texts = await Promise.all(
        Array.from({ length: 24 }, async () => streamedText(await client.chat.completions.create(ask))),
      );
      // None broke at the client: a's breaks failed over to b, a's clean streams came whole.
      for (const t of texts) expect(['xyz', 'Hello from b']).toContain(t);
      expect(texts).toContain('xyz');
      expect(texts).toContain('Hello from b');
    } finally {
      pair.a.setDefault({ type: 'ok' });
      pair.b.setDefault({ type: 'ok' });
    }
    await vi.waitFor(() => {
      expect(server.router.getStats('a')!.inFlight).toBe(0);
      expect(server.router.getStats('b')!.inFlight).toBe(0);
    }, SETTLE);
    expect(await heldBytes(server)).toBe(0);
  });

  it('counts what held streams keep, and lets a stream go live past the server-wide budget', async () => {
    const { client, server } = await start();
    await breakOne(client);
    expect(await heldBytes(server)).toBe(0);
    // Mid-way, the gauge shows the pieces held so far (see `heldWhole`); all of it is let go at the end.
    expect((await heldWhole(client, server)).text).toBe('pqrs');
    expect(await heldBytes(server)).toBe(0);

    // A budget smaller than one piece: the stream on probation goes live at its first piece.
    const small = await start(undefined, 64);
    await breakOne(small.client);
    expect(onProbation(small.server, 'a')).toBe(true);
    pair.a.next({ type: 'stream', chunks: ['p', 'q', 'r', 's'], intervalMs: 120 });
    const live = await timedText(await small.client.chat.completions.create(ask));
    expect(live.text).toBe('pqrs');
    expect(live.at.at(-1)).toBeGreaterThanOrEqual(300);
    expect(await heldBytes(small.server)).toBe(0);
  });

  it('refuses a negative hold, and a held-bytes budget that is not > 0', () => {
    expect(() => createServer({ router: { endpoints: [] }, server: { streamProbationHoldMs: -1 } })).toThrow(
      /server\.streamProbationHoldMs: expected a number >= 0 \(0: off\), received -1/,
    );
    expect(() => createServer({ router: { endpoints: [] }, server: { streamProbationMaxBytes: 0 } })).toThrow(
      /server\.streamProbationMaxBytes: expected a number > 0, received 0/,
    );
  });
});

describe('stream probation of a translated (Anthropic) stream', () => {
  it('holds it back and fails its error event over; a clean one ends the probation', async () => {
    const claudeKey = fakeKey('claude');
    const claude = await startFakeAnthropic({ acceptKeys: [claudeKey] });
    const server = createServer({
      router: {
        endpoints: [
          { id: 'claude', url: claude.url, apiKey: claudeKey, provider: 'anthropic', priority: 1 },
          { id: 'b', url: pair.b.url, apiKey: keys.b, priority: 2 },
        ],
        strategy: 'priority',
      },
      breaker: { enabled: false },
      server: { port: 0 },
      logDestination: { write: () => true } as any,
    });
    pair.track(server);
    const client = new OpenAI({
      baseURL: `${await server.listen()}/v1`,
      apiKey: 'client-key',
      maxRetries: 0,
    });
    try {
      // Live: the client gets "Hel", then the error.
      claude.next(OVERLOADED_MID_STREAM);
      await expect(streamedText(await client.chat.completions.create(ask))).rejects.toThrow(/overloaded/);
      expect(onProbation(server, 'claude')).toBe(true);
      // Held: the same failure fails over.
      claude.next(OVERLOADED_MID_STREAM);
      const { data, response } = await client.chat.completions.create(ask).withResponse();
      expect(await streamedText(data)).toBe('Hello from b');
      expect(response.headers.get('x-lb-attempts')).toBe('2');
      claude.next({ type: 'ok', chunks: ['p', 'q', 'r'], intervalMs: 100 });
      const held = await timedText(await client.chat.completions.create(ask));
      expect(held.text).toBe('pqr');
      expect(held.at.at(-1)).toBeLessThan(100);
      expect(onProbation(server, 'claude')).toBe(false);
    } finally {
      await claude.close();
    }
  });
});
