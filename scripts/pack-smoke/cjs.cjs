// CommonJS consumer of the installed tarballs: every package requires, and one request fails over.
const assert = require('node:assert/strict');
const { attachBreaker } = require('@lb/breaker');
const { loadConfig } = require('@lb/config-env');
const { createRouter } = require('@lb/core');
const { LoadBalancedOpenAI } = require('@lb/openai-adapter');
const { getDialect } = require('@lb/providers');
const { attachRateLimit } = require('@lb/ratelimit');
const { createServer } = require('@lb/server');
const { startUpstreams } = require('./upstream.cjs');

async function main() {
  for (const f of [attachBreaker, loadConfig, createRouter, getDialect, attachRateLimit, createServer]) {
    assert.equal(typeof f, 'function');
  }
  const ups = await startUpstreams();
  try {
    const router = createRouter({
      endpoints: [
        { id: 'dead', url: ups.dead.url, apiKey: 'sk-smoke-dead' },
        { id: 'live', url: ups.live.url, apiKey: 'sk-smoke-live', priority: 2 },
      ],
    });
    const client = new LoadBalancedOpenAI({ router });
    const { response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.equal(response.headers.get('x-lb-endpoint'), 'live');
    console.log('cjs ok: failed over to', response.headers.get('x-lb-endpoint'));
  } finally {
    ups.close();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
