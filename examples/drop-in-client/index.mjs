// The official openai SDK over two endpoints with @lb/openai-adapter: the first one fails, the call fails over, and
// the response says which endpoint answered. Runs against two tiny local upstreams it starts itself (OpenAI's wire
// format), so it needs no keys and no network.
import { createServer } from 'node:http';
import { LoadBalancedOpenAI } from '@lb/openai-adapter';

function upstream(name, status) {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (status !== 200) {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ error: { message: 'boom', type: 'server_error', param: null, code: null } }),
        );
        return;
      }
      const { model, stream } = JSON.parse(body);
      const text = `hello from ${name}`;
      if (stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const word of text.split(' ')) {
          const chunk = {
            id: 'chatcmpl-1',
            object: 'chat.completion.chunk',
            created: 0,
            model,
            choices: [{ index: 0, delta: { content: `${word} ` }, finish_reason: null }],
          };
          res.write(`data: ${JSON.stringify(chunk)}\n\n`);
        }
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 0,
          model,
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 },
        }),
      );
    });
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

const broken = await upstream('primary', 500);
const healthy = await upstream('backup', 200);
const client = new LoadBalancedOpenAI({
  endpoints: [
    {
      id: 'primary',
      url: `http://127.0.0.1:${broken.address().port}/v1`,
      apiKey: 'sk-proj-example-primary-key-0000N0IA',
    },
    {
      id: 'backup',
      url: `http://127.0.0.1:${healthy.address().port}/v1`,
      apiKey: 'sk-proj-example-backup-key-1111N0IA',
      priority: 2,
    },
  ],
});
client.router.on('attempt:failure', (e) =>
  console.log(`attempt ${e.attempt} on ${e.endpointId} failed: ${e.kind} ${e.status}`),
);

const messages = [{ role: 'user', content: 'hi' }];
const { data, response } = await client.chat.completions
  .create({ model: 'gpt-4o-mini', messages })
  .withResponse();
console.log(
  `${data.choices[0].message.content} (x-lb-endpoint: ${response.headers.get('x-lb-endpoint')}, x-lb-attempts: ${response.headers.get('x-lb-attempts')})`,
);

const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
let text = '';
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
console.log(`streamed: ${text.trim()}`);
console.log(`endpoints: ${client.router.endpoints.map(String).join(', ')}`);
broken.close();
healthy.close();
