// @lb/core in your own code: it picks an endpoint and fails over; you make the HTTP call (here: fetch).
import { createRouter } from '@lb/core';

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
      priority: 2, // used while the primary is out
    },
  ],
});

// Every decision and outcome is a typed event; subscribing returns a disposer.
router.on('attempt:failure', (e) =>
  console.log(`attempt ${e.attempt} on ${e.endpointId}: ${e.kind} ${e.status}`),
);
router.on('endpoint:state', (e) => console.log(`${e.endpointId}: ${e.from} → ${e.to} (${e.reason})`));

for (let i = 0; i < 6; i++) {
  const res = await router.execute(
    { model: 'gpt-4o-mini' },
    ({ endpoint, upstreamModel, signal }) =>
      fetch(`${endpoint.url}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${endpoint.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: upstreamModel, messages: [{ role: 'user', content: 'hi' }] }),
        signal, // the router aborts it on its deadline or a per-attempt timeout
      }),
    { discard: (r) => r.body?.cancel() }, // frees a failed response's body before the next attempt
  );
  const body = await res.json();
  console.log(`request ${i + 1}: ${res.status} ${body.choices[0].message.content}`);
}

// What a health page shows: state, reasons and stats per endpoint, keys masked.
for (const ep of router.snapshot().endpoints) console.log(`${ep.id}: ${ep.status}, key ${ep.apiKey}`);
