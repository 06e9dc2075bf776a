// The Vercel AI SDK through the router's fetch: every call fails over across the router's endpoints.
import { createOpenAI } from '@ai-sdk/openai';
import { createRouterFetch, PLACEHOLDER_BASE_URL } from '@lb/openai-adapter';
import { generateText, streamText } from 'ai';
import { router } from './router.mjs';

const openai = createOpenAI({
  baseURL: PLACEHOLDER_BASE_URL, // every URL under it goes through the router
  apiKey: 'lb-managed', // each endpoint's own key is sent instead
  fetch: createRouterFetch(router),
});
// `openai.chat(…)`: chat completions, which every OpenAI-compatible server speaks (`openai(…)` uses /responses).
const model = openai.chat('gpt-4o-mini');

// maxRetries: 0 — the router already retries on other endpoints; the SDK's own retries (2 by default, with
// backoff) would multiply them: with both endpoints down, 12 upstream attempts over ~8 s instead of 4 at once.
const { text } = await generateText({ model, prompt: 'Say hi', maxRetries: 0 });
console.log(`generateText: ${text}`);

const stream = streamText({ model, prompt: 'Say hi, slowly', maxRetries: 0 });
let streamed = '';
for await (const part of stream.textStream) streamed += part;
console.log(`streamText: ${streamed}`);
