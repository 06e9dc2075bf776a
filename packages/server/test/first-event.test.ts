import { streamedText } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import { usePair } from './pair.js';

// A stream whose headers come at once and whose first event does not: the first-byte timeout fails it over. At
// 400 ms it runs on a Node timer, above a second on undici's shared coarse one; both must fire and fail over.
const pair = usePair();

function clientFor(firstByteMs: number) {
  return pair.serve({ server: { streamFirstByteTimeoutMs: firstByteMs, streamIdleTimeoutMs: 20_000 } });
}

describe('first-byte timeout of a stream whose headers came', () => {
  for (const ms of [400, 1200]) {
    it(`fails over after ${ms} ms without content`, async () => {
      const { client, server } = await clientFor(ms);
      const failures: string[] = [];
      server.router.on('attempt:failure', (e) => failures.push(`${e.endpointId}:${e.kind}`));
      pair.a.next({ type: 'stream', firstEventDelayMs: 8_000 });
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
