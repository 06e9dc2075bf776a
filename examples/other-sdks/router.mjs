// The router both recipes share: two OpenAI-compatible endpoints, the second a fallback. Point them anywhere with
// PRIMARY_URL / OPENAI_API_KEY and BACKUP_URL / BACKUP_API_KEY.
import { createRouter } from '@lb/core';

export const router = createRouter({
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
router.on('attempt:failure', (e) =>
  console.log(`attempt on ${e.endpointId} failed: ${e.kind} ${e.status ?? ''}`),
);
