// Type-checked (never run) under `node16` (as ESM) and `bundler` resolution against the installed tarballs.
import { attachBreaker } from '@lb/breaker';
import { type LbConfig, loadConfig } from '@lb/config-env';
import { createRouter, type RouterConfig, type Strategy } from '@lb/core';
import { createRouterFetch, LoadBalancedOpenAI } from '@lb/openai-adapter';
import { getDialect } from '@lb/providers';
import { attachRateLimit } from '@lb/ratelimit';
import { createServer } from '@lb/server';

const first: Strategy = { name: 'first', pick: (candidates) => candidates[0] };
const config: RouterConfig = {
  endpoints: [{ id: 'a', url: 'http://127.0.0.1:1/v1', apiKey: 'sk-a' }],
  strategy: first,
};
const router = createRouter(config);
const breaker = attachBreaker(router);
attachRateLimit(router);
const fetchThroughRouter = createRouterFetch(router);
const client = new LoadBalancedOpenAI({ router });
const loaded: LbConfig | undefined = undefined as LbConfig | undefined;

export { breaker, client, createServer, fetchThroughRouter, getDialect, loadConfig, loaded };
