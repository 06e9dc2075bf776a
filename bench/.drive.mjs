import { Client } from 'undici';
const [url, n] = process.argv.slice(2);
const BODY = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] });
const c = new Client(url);
for (let i = 0; i < Number(n); i++) {
  const r = await c.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: BODY });
  for await (const _ of r.body);
}
await c.close();
