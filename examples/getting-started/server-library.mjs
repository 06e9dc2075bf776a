// lb-server as a library: the proxy inside your own Node process, configured like the command (env, .env, LB_CONFIG).
import { loadConfig } from '@lb/config-env';
import { createServer } from '@lb/server';
import OpenAI from 'openai';

const server = createServer(loadConfig()); // loadConfig is synchronous
const url = await server.listen();
console.log(`listening on ${url}`);

// Any OpenAI client, pointed at it.
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
const { data, response } = await client.chat.completions
  .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
  .withResponse();
console.log(`${data.choices[0].message.content} (from ${response.headers.get('x-lb-endpoint')})`);

await server.close(); // graceful: drains in-flight requests
