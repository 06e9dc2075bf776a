// ESM consumer of the installed tarballs: every package imports, and one request fails over to the live upstream.
import assert from 'node:assert/strict';
import { attachBreaker } from '@lb/breaker';
import { loadConfig } from '@lb/config-env';
import { createRouter } from '@lb/core';
import { LoadBalancedOpenAI } from '@lb/openai-adapter';
import { getDialect } from '@lb/providers';
import { attachRateLimit } from '@lb/ratelimit';
import { createServer } from '@lb/server';
import upstream from './upstream.cjs';

for (const f of [attachBreaker, loadConfig, createRouter, getDialect, attachRateLimit, createServer]) {
  assert.equal(typeof f, 'function');
}
const ups = await upstream.startUpstreams();
try {
  const client = new LoadBalancedOpenAI({
    endpoints: [
      { id: 'dead', url: ups.dead.url, apiKey: 'sk-smoke-dead' },
      { id: 'live', url: ups.live.url, apiKey: 'sk-smoke-live', priority: 2 },
    ],
  });
  const { data, response } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
    .withResponse();
  assert.equal(data.choices[0].message.content, 'hi');
  assert.equal(response.headers.get('x-lb-endpoint'), 'live');
  const router = createRouter({ endpoints: [{ id: 'a', url: ups.live.url, apiKey: 'sk-a' }] });
  attachBreaker(router);
  assert.equal(router.pick({ model: 'gpt-4o-mini' })?.endpoint.id, 'a');
  console.log('esm ok: failed over to', response.headers.get('x-lb-endpoint'));
} finally {
  ups.close();
}
