import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoUpstreams, startDemoUpstreams } from '../src/demo.js';
import { createServer, type LbServer } from '../src/index.js';

let demo: DemoUpstreams;
let server: LbServer;
let client: OpenAI;

beforeAll(async () => {
  demo = await startDemoUpstreams([
    { name: 'healthy', latencyMs: [0, 1], failRate: 0, rateLimitRate: 0 },
    { name: 'flaky', latencyMs: [0, 1], failRate: 1, rateLimitRate: 0 },
    { name: 'slow', latencyMs: [5, 10], failRate: 0, rateLimitRate: 0 },
  ]);
  server = createServer({
    router: { endpoints: demo.endpoints, strategy: 'round-robin', backoff: { initialMs: 1, maxMs: 2 } },
    server: { port: 0 },
    breaker: { enabled: false },
    logDestination: { write: () => true } as any,
  });
  client = new OpenAI({ baseURL: `${await server.listen()}/v1`, apiKey: 'x', maxRetries: 0 });
});

afterAll(async () => {
  await server.close(100);
  await demo.close();
});

describe('demo upstreams', () => {
  it('serve chat through the proxy, the flaky one failing over to the others', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
      });
      seen.add(r.system_fingerprint!);
    }
    expect([...seen].sort()).toEqual(['healthy', 'slow']);
    expect(server.router.getStats('flaky')!.failures).toBeGreaterThan(0);
  });

  it('stream word by word', async () => {
    server.router.setEndpointHealth('flaky', false);
    server.router.setEndpointHealth('slow', false);
    const parts: string[] = [];
    for await (const ch of await client.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    }))
      parts.push(ch.choices[0]?.delta?.content ?? '');
    expect(parts.join('')).toContain('healthy upstream');
    expect(parts.filter(Boolean).length).toBeGreaterThan(5);
  });
});
