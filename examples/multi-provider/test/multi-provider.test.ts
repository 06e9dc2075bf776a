import { createRequire } from 'node:module';
import path from 'node:path';
import {
  type FakeAnthropic,
  type FakeUpstream,
  type NodeProcess,
  startFakeAnthropic,
  startFakeUpstream,
  startNode,
} from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const dir = path.resolve(__dirname, '..');
const cli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@lb/server/package.json')),
  'bin/lb-server.mjs',
);
const keys = {
  AZURE_OPENAI_API_KEY: 'azure-key-0123456789abcdef',
  OPENAI_API_KEY: 'sk-proj-example-openai-2222N0IA',
  ANTHROPIC_API_KEY: 'sk-ant-example-key-3333N0IA',
};
let azure: FakeUpstream;
let openai: FakeUpstream;
let anthropic: FakeAnthropic;
let lb: NodeProcess;
let client: OpenAI;

beforeAll(async () => {
  // Azure answers on /openai/deployments/{deployment}/chat/completions?api-version=…, with an `api-key` header.
  azure = await startFakeUpstream({
    name: 'azure',
    defaultBehaviour: (rec) =>
      rec.path === '/openai/deployments/prod-gpt-4o/chat/completions' &&
      rec.headers['api-key'] === keys.AZURE_OPENAI_API_KEY
        ? {
            type: 'custom',
            handle: (_r, res) =>
              res
                .writeHead(200, { 'content-type': 'application/json' })
                .end(JSON.stringify(completion('Hello from azure'))),
          }
        : { type: 'status', status: 404 },
  });
  openai = await startFakeUpstream({ name: 'openai', acceptKeys: [keys.OPENAI_API_KEY] });
  anthropic = await startFakeAnthropic({ acceptKeys: [keys.ANTHROPIC_API_KEY] });
  lb = await startNode(
    dir,
    [cli, '--config', 'lb.toml'],
    {
      ...keys,
      AZURE_OPENAI_URL: azure.url.replace(/\/v1$/, ''),
      OPENAI_UPSTREAM_URL: openai.url,
      ANTHROPIC_UPSTREAM_URL: anthropic.url,
      PORT: '0',
      LOG_LEVEL: 'error',
    },
    /listening on (http:\/\/\S+)/,
  );
  client = new OpenAI({ baseURL: `${lb.match[1]}/v1`, apiKey: 'unused', maxRetries: 0 });
});
afterAll(async () => {
  expect(await lb?.stop()).toBe(0);
  await Promise.all([azure?.close(), openai?.close(), anthropic?.close()]);
});

function completion(content: string) {
  return {
    id: 'chatcmpl-azure',
    object: 'chat.completion',
    created: 0,
    model: 'gpt-4o',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
  };
}

const ask = () =>
  client.chat.completions
    .create({ model: 'smart', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();

describe('Azure OpenAI + OpenAI + Anthropic behind the model name "smart"', () => {
  it('Azure serves it first, on its deployment, with its api-key', async () => {
    const { data, response } = await ask();
    expect(response.headers.get('x-lb-endpoint')).toBe('azure');
    expect(data.choices[0].message.content).toBe('Hello from azure');
    expect(azure.requests.at(-1)?.url).toMatch(
      /^\/openai\/deployments\/prod-gpt-4o\/chat\/completions\?api-version=/,
    );
  });

  it('OpenAI when Azure fails, with the upstream model name', async () => {
    azure.next({ type: 'status', status: 503 });
    const { data, response } = await ask();
    expect(response.headers.get('x-lb-endpoint')).toBe('openai');
    expect(data.choices[0].message.content).toBe('Hello from openai');
    expect(openai.requests.at(-1)?.json.model).toBe('gpt-4o');
  });

  it('Anthropic when both fail: its Messages API, answered to the client in OpenAI format', async () => {
    azure.next({ type: 'status', status: 503 });
    openai.next({ type: 'status', status: 500 });
    const { data, response } = await ask();
    expect(response.headers.get('x-lb-endpoint')).toBe('anthropic');
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0].message.content?.length).toBeGreaterThan(0);
    const sent = anthropic.requests.at(-1);
    expect(sent?.path).toBe('/v1/messages');
    expect(sent?.json.model).toBe('claude-sonnet-4-5');
    expect(sent?.headers['x-api-key']).toBe(keys.ANTHROPIC_API_KEY);
  });

  it('the banner lists the three endpoints with their keys masked', () => {
    expect(lb.out()).toContain('3 endpoint(s)');
    for (const name of ['azure', 'openai', 'anthropic']) expect(lb.out()).toContain(`• ${name}`);
    for (const key of Object.values(keys)) expect(lb.out()).not.toContain(key);
  });
});
