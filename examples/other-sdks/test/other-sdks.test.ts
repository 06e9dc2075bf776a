import path from 'node:path';
import { createOpenAI as createAiSdkOpenAI } from '@ai-sdk/openai';
import { createRouter } from '@lb/core';
import { createLoadBalancedOpenAI, createOpenAI, LoadBalancedOpenAI } from '@lb/openai-adapter';
import { deadAndLive, runNode } from '@lb/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const dir = path.resolve(__dirname, '..');
let ups: Awaited<ReturnType<typeof deadAndLive>>;
beforeAll(async () => {
  ups = await deadAndLive();
});
afterAll(() => ups.close());

describe("other SDKs through the router's fetch (the primary endpoint dead)", () => {
  it('the Vercel AI SDK: generateText and streamText fail over, one attempt each at the dead endpoint', async () => {
    const before = ups.dead.count('/chat/completions');
    const r = await runNode(dir, 'ai-sdk.mjs', ups.env);
    expect(r.out).toContain('generateText: Hello from live');
    expect(r.out).toMatch(/streamText: \S/);
    expect(r.code).toBe(0);
    // maxRetries: 0: the SDK never retried on its own; the router tried the dead endpoint once per call.
    expect(ups.dead.count('/chat/completions') - before).toBe(2);
    expect(r.out).not.toContain(ups.env.OPENAI_API_KEY);
  });

  it('LangChain.js: invoke and stream fail over, one attempt each at the dead endpoint', async () => {
    const before = ups.dead.count('/chat/completions');
    const r = await runNode(dir, 'langchain.mjs', ups.env);
    expect(r.out).toContain('invoke: Hello from live');
    expect(r.out).toMatch(/stream: \S/);
    expect(r.code).toBe(0);
    expect(ups.dead.count('/chat/completions') - before).toBe(2);
    // The live endpoint got its own key, not the SDK's placeholder.
    expect(
      ups.live.requests.every((q) => q.headers.authorization === 'Bearer sk-proj-example-backup-1111N0IA'),
    ).toBe(true);
  });
});

it('createLoadBalancedOpenAI: the adapter under a name that does not clash with @ai-sdk/openai', () => {
  expect(createLoadBalancedOpenAI).toBe(createOpenAI);
  expect(createLoadBalancedOpenAI).not.toBe(createAiSdkOpenAI);
  const client = createLoadBalancedOpenAI(
    createRouter({ endpoints: [{ id: 'a', url: ups.live.url, apiKey: 'sk-a' }] }),
  );
  expect(client).toBeInstanceOf(LoadBalancedOpenAI);
});
