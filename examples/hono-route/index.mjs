// Serves the Hono app of app.mjs on Node: `PORT=3000 node index.mjs`, then point an OpenAI client at
// http://127.0.0.1:3000/v1.
import { serve } from '@hono/node-server';
import { app } from './app.mjs';

serve(
  { fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: process.env.HOST ?? '127.0.0.1' },
  (info) =>
    console.log(
      `listening on http://127.0.0.1:${info.port} (OpenAI base URL: http://127.0.0.1:${info.port}/v1)`,
    ),
);
