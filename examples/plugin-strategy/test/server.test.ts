import { createRequire } from 'node:module';
import path from 'node:path';
import { type FakeUpstream, type NodeProcess, startFakeUpstream, startNode } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const dir = path.resolve(__dirname, '..');
const cli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@lb/server/package.json')),
  'bin/lb-server.mjs',
);
const ups: FakeUpstream[] = [];
let lb: NodeProcess;
let client: OpenAI;

beforeAll(async () => {
  for (const name of ['a', 'b', 'c']) ups.push(await startFakeUpstream({ name }));
  lb = await startNode(
    dir,
    [cli, '--config', 'lb.toml'],
    { A_URL: ups[0].url, B_URL: ups[1].url, C_URL: ups[2].url, PORT: '0', LOG_LEVEL: 'error' },
    /listening on (http:\/\/\S+)[\s\S]*endpoint\(s\)/,
  );
  client = new OpenAI({ baseURL: `${lb.match[1]}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  expect(await lb?.stop()).toBe(0);
  await Promise.all(ups.map((u) => u.close()));
});

const endpointFor = async (model: string) => {
  const { response } = await client.chat.completions
    .create({ model, messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  return response.headers.get('x-lb-endpoint');
};

describe('lb-server with the plugin strategy, loaded from lb.toml', () => {
  it('says it loaded the plugin and runs its strategy', () => {
    expect(lb.out()).toContain(
      'plugins: ./strategy.mjs (strategies model-affinity); ./extras.mjs (guards drain-tag; dialects openai-org)',
    );
    expect(lb.out()).toContain('strategy model-affinity');
  });

  it('each model sticks to one endpoint; different models spread over them', async () => {
    const seen = new Map<string, string | null>();
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < 6; i++) {
        const model = `model-${i}`;
        const at = await endpointFor(model);
        if (round === 0) seen.set(model, at);
        else expect(at).toBe(seen.get(model));
      }
    expect(new Set(seen.values()).size).toBeGreaterThan(1);
  });

  it("fails over when a model's endpoint is down, through the strategy", async () => {
    const model = 'model-0';
    const home = await endpointFor(model);
    const down = ups.find((u) => u.name === home);
    expect(down).toBeDefined();
    await down!.close();
    const { data, response } = await client.chat.completions
      .create({ model, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(response.headers.get('x-lb-endpoint')).not.toBe(home);
    expect(data.choices[0].message.content).toMatch(/^Hello from [abc]$/);
  });
});
