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
const OPENAI_API_KEY = 'sk-proj-example-hosted-4444N0IA';
let local: FakeUpstream;
let hosted: FakeUpstream;
let lb: NodeProcess;
let client: OpenAI;

beforeAll(async () => {
  local = await startFakeUpstream({ name: 'local' }); // stands in for Ollama / vLLM / llama-server
  hosted = await startFakeUpstream({ name: 'hosted', acceptKeys: [OPENAI_API_KEY] });
  lb = await startNode(
    dir,
    [cli, '--config', 'lb.toml'],
    { OPENAI_API_KEY, LOCAL_URL: local.url, OPENAI_UPSTREAM_URL: hosted.url, PORT: '0', LOG_LEVEL: 'error' },
    /listening on (http:\/\/\S+)/,
  );
  client = new OpenAI({ baseURL: `${lb.match[1]}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  expect(await lb?.stop()).toBe(0);
  await hosted?.close();
});

const ask = () =>
  client.chat.completions
    .create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();

describe('local models first, a hosted model as the fallback', () => {
  it('the local server answers while it is up, with the local model name and no key', async () => {
    const { data, response } = await ask();
    expect(response.headers.get('x-lb-endpoint')).toBe('local');
    expect(data.choices[0].message.content).toBe('Hello from local');
    expect(local.requests.at(-1)?.json.model).toBe('llama3.1');
    expect(local.requests.at(-1)?.headers.authorization).toBeUndefined();
  });

  it('the hosted model answers when the local server is down; after 3 failures its circuit opens', async () => {
    await local.close();
    for (let i = 0; i < 6; i++) {
      const { data, response } = await ask();
      expect(response.headers.get('x-lb-endpoint')).toBe('hosted');
      expect(data.choices[0].message.content).toBe('Hello from hosted');
    }
    expect(hosted.requests.at(-1)?.json.model).toBe('gpt-4o-mini');
    const health = await (await fetch(`${lb.match[1]}/health`)).json();
    const localView = health.endpoints.find((e: { id: string }) => e.id === 'local');
    expect(localView.breaker).toBe('open');
    expect(localView.attempts).toBe(4); // 1 answered + 3 refused, then no more while the circuit is open
  });
});
