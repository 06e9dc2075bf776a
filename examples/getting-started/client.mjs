// The drop-in client: a real `openai` SDK instance whose every call fails over across endpoints.
import { LoadBalancedOpenAI } from '@lb/openai-adapter';

const client = new LoadBalancedOpenAI({
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

const { data, response } = await client.chat.completions
  .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
  .withResponse();
console.log(`${data.choices[0].message.content} (from ${response.headers.get('x-lb-endpoint')})`);

// Streams fail over too, until their first byte.
const stream = await client.chat.completions.create({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'hi' }],
  stream: true,
});
let text = '';
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
console.log(`streamed: ${text}`);
