import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { deadAndLive } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let ups: Awaited<ReturnType<typeof deadAndLive>>;
let server: ReturnType<typeof serve>;
let client: OpenAI;
beforeAll(async () => {
  ups = await deadAndLive();
  Object.assign(process.env, ups.env); // app.mjs reads its endpoints from the environment, as a user's would
  const { app } = await import('../app.mjs');
  server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as AddressInfo;
  client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'my-apps-own-key', maxRetries: 0 });
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await ups.close();
});

describe('lb inside a Hono route (the primary endpoint dead)', () => {
  it('a chat completion fails over and says who served it; the upstream gets its own key, not the caller’s', async () => {
    const before = ups.dead.count('/chat/completions');
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(data.choices[0].message.content).toBe('Hello from live');
    expect(response.headers.get('x-lb-endpoint')).toBe('backup');
    expect(ups.dead.count('/chat/completions') - before).toBe(1);
    const last = ups.live.requests[ups.live.requests.length - 1];
    expect(last.headers.authorization).toBe(`Bearer ${ups.env.BACKUP_API_KEY}`);
  });

  it('a stream passes through chunk by chunk', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    let chunks = 0;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? '';
      chunks++;
    }
    expect(chunks).toBeGreaterThan(1);
    expect(text.length).toBeGreaterThan(0);
  });

  it('GET routes (models) go through too', async () => {
    const models = await client.models.list();
    expect(models.data.length).toBeGreaterThan(0);
  });
});
