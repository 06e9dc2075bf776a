// lb inside a Hono route: your app's own `/v1/*` is an OpenAI-compatible proxy that fails over across endpoints,
// in-process (no lb-server to run). Put your auth, quotas and logging in front of it as Hono middleware.
import { createRouter } from '@lb/core';
import { createRouterFetch, PLACEHOLDER_BASE_URL } from '@lb/openai-adapter';
import { Hono } from 'hono';

const router = createRouter({
  endpoints: [
    {
      id: 'primary',
      url: process.env.PRIMARY_URL ?? 'https://api.openai.com/v1',
      apiKey: process.env.OPENAI_API_KEY,
    },
    {
      id: 'backup',
      url: process.env.BACKUP_URL ?? 'https://my-proxy.example/v1',
      apiKey: process.env.BACKUP_API_KEY,
      priority: 2,
    },
  ],
});
const routerFetch = createRouterFetch(router);

export const app = new Hono();

app.all('/v1/*', async (c) => {
  // Check the caller here (c.req.header('authorization')): the endpoints' own keys never leave the server.
  const url = new URL(c.req.url);
  const body =
    c.req.method === 'GET' || c.req.method === 'HEAD' ? undefined : new Uint8Array(await c.req.arrayBuffer());
  // The answer streams through as it comes (SSE included), with `x-lb-endpoint` naming who served it.
  return routerFetch(`${PLACEHOLDER_BASE_URL}${url.pathname.slice('/v1'.length)}${url.search}`, {
    method: c.req.method,
    headers: { 'content-type': c.req.header('content-type') ?? 'application/json' },
    body,
    signal: c.req.raw.signal, // the client hanging up cancels the upstream request
  });
});

app.get('/health', (c) => c.json(router.snapshot().summary));
