// @lb/core on its own: pick endpoints and fail over around any HTTP client (here: the platform's fetch).
// Runs against two tiny local upstreams it starts itself, so it needs no keys and no network.
import { createServer } from 'node:http';
import { createRouter } from '@lb/core';

function upstream(status) {
  const server = createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(
        status === 200 ? { ok: true, from: server.address().port } : { error: { message: 'boom' } },
      ),
    );
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

const broken = await upstream(500);
const healthy = await upstream(200);
const router = createRouter({
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
router.on('attempt:failure', (e) =>
  console.log(`attempt ${e.attempt} on ${e.endpointId} failed: ${e.kind} ${e.status}`),
);

const res = await router.execute(
  { model: 'gpt-4o-mini' },
  ({ endpoint, upstreamModel, signal }) =>
    fetch(`${endpoint.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${endpoint.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: upstreamModel, messages: [{ role: 'user', content: 'hi' }] }),
      signal,
    }),
  { discard: (r) => r.body?.cancel() },
);
console.log(`answered by backup: ${res.status} ${JSON.stringify(await res.json())}`);
console.log(`endpoints: ${router.endpoints.map(String).join(', ')}`);
broken.close();
healthy.close();
