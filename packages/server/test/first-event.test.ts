import { type FakeUpstream, fakeKey, startFakeUpstream, streamedText } from '@lb/test-utils';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// A stream whose headers come at once and whose first event does not: the first-byte timeout fails it over. At
// 400 ms it runs on a Node timer, above a second on undici's shared coarse one; both must fire and fail over.
let a: FakeUpstream;
let b: FakeUpstream;
const keys = { a: fakeKey('alpha'), b: fakeKey('bravo') };
const servers: LbServer[] = [];

beforeAll(async () => {
  [a, b] = await Promise.all([
    startFakeUpstream({ name: 'a', acceptKeys: [keys.a] }),
    startFakeUpstream({ name: 'b', acceptKeys: [keys.b] }),
  ]);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(100)));
  await Promise.all([a.close(), b.close()]);
});

async function clientFor(firstByteMs: number): Promise<{ client: OpenAI; server: LbServer }> {
  const server = createServer({
    router: {
      endpoints: [
        { id: 'a', url: a.url, apiKey: keys.a, priority: 1 },
        { id: 'b', url: b.url, apiKey: keys.b, priority: 2 },
      ],
      strategy: 'priority',
    },
    server: { port: 0, streamFirstByteTimeoutMs: firstByteMs, streamIdleTimeoutMs: 20_000 },
    logDestination: { write: () => true } as any,
  });
  servers.push(server);
  const base = await server.listen();
  return { server, client: new OpenAI({ baseURL: `${base}/v1`, apiKey: 'client-key', maxRetries: 0 }) };
}

describe('first-byte timeout of a stream whose headers came', () => {
  for (const ms of [400, 1200]) {
    it(`fails over after ${ms} ms without content`, async () => {
      const { client, server } = await clientFor(ms);
      const failures: string[] = [];
      server.router.on('attempt:failure', (e) => failures.push(`${e.endpointId}:${e.kind}`));
      a.next({ type: 'stream', firstEventDelayMs: 8_000 });
      const t0 = performance.now();
      const stream = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        stream: true,
        messages: [{ role: 'user', content: 'x' }],
      });
      const text = await streamedText(stream);
      const took = performance.now() - t0;
      expect(text).toBe('Hello from b');
      expect(failures).toEqual(['a:timeout']);
      // Fired, and not before its time: a Node timer is never early, undici's coarse one (like its own header and
      // body timeouts) counts in ticks of half a second, so it may fire up to one tick early or late.
      expect(took).toBeGreaterThanOrEqual(ms > 1000 ? ms - 500 : ms - 5);
      expect(took).toBeLessThan(8_000);
    });
  }
});
