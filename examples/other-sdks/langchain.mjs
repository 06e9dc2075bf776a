// LangChain.js through the router's fetch: ChatOpenAI's every call fails over across the router's endpoints.
import { ChatOpenAI } from '@langchain/openai';
import { createRouterFetch, PLACEHOLDER_BASE_URL } from '@lb/openai-adapter';
import { router } from './router.mjs';

const llm = new ChatOpenAI({
  model: 'gpt-4o-mini',
  apiKey: 'lb-managed', // each endpoint's own key is sent instead
  // maxRetries: 0 — the router already retries on other endpoints; LangChain's own retries (6 by default, with
  // exponential backoff) would multiply them: with both endpoints down, 28 upstream attempts over ~107 s.
  maxRetries: 0,
  configuration: { baseURL: PLACEHOLDER_BASE_URL, fetch: createRouterFetch(router) },
});

const answer = await llm.invoke('Say hi');
console.log(`invoke: ${answer.content}`);

let streamed = '';
for await (const chunk of await llm.stream('Say hi, slowly')) streamed += chunk.content;
console.log(`stream: ${streamed}`);
