import { describe, expect, it } from 'vitest';
import { createRouter, isNoHealthyEndpointError } from '../src/index.js';

// `RouteRequest.endpoint`: a request pinned to one endpoint (objects that live there, `x-lb-endpoint`).
const router = () =>
  createRouter({
    endpoints: [
      { id: 'a', url: 'http://a.invalid/v1', apiKey: 'k-a', priority: 1, tags: ['eu'] },
      { id: 'b', url: 'http://b.invalid/v1', apiKey: 'k-b', priority: 2, models: ['m'] },
    ],
    strategy: 'priority',
    maxRetries: 2,
    backoff: { initialMs: 1, maxMs: 1, jitter: 0 },
  });

describe('a pinned request', () => {
  it('goes to its endpoint only, even when a better one is healthy', async () => {
    const r = router();
    const ids: string[] = [];
    await r.execute({ endpoint: 'b' }, async (ctx) => {
      ids.push(ctx.endpoint.id);
      return { status: 200 };
    });
    expect(ids).toEqual(['b']);
  });

  it('never fails over to another endpoint: it retries its own, then fails', async () => {
    const r = router();
    const ids: string[] = [];
    const err = await r
      .execute({ endpoint: 'b' }, async (ctx) => {
        ids.push(ctx.endpoint.id);
        return { status: 503 };
      })
      .catch((e) => e);
    expect(isNoHealthyEndpointError(err)).toBe(true);
    expect(new Set(ids)).toEqual(new Set(['b']));
  });

  it('an unknown id, one not serving the model, or one without the request tags: 400 unknown_endpoint', async () => {
    const r = router();
    const ok = async () => ({ status: 200 });
    await expect(r.execute({ endpoint: 'zz' }, ok)).rejects.toMatchObject({
      status: 400,
      code: 'unknown_endpoint',
    });
    await expect(r.execute({ endpoint: 'b', model: 'other' }, ok)).rejects.toMatchObject({
      code: 'unknown_endpoint',
    });
    await expect(r.execute({ endpoint: 'b', tags: ['eu'] }, ok)).rejects.toMatchObject({
      code: 'unknown_endpoint',
    });
  });
});
