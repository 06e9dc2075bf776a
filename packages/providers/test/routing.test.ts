import { createRouter } from '@lb/core';
import { describe, expect, it } from 'vitest';
import { explainUnservable, isProviderError, providerGuard, registerDialect } from '../src/index.js';

const pool = () =>
  createRouter({
    endpoints: [
      {
        id: 'claude',
        url: 'https://api.anthropic.com/v1',
        provider: 'anthropic',
        models: ['smart', 'claude-only'],
        priority: 1,
      },
      {
        id: 'oai',
        url: 'https://api.openai.com/v1',
        models: ['smart', 'text-embedding-3-small'],
        priority: 2,
      },
      { id: 'az', url: 'https://r.openai.azure.com', provider: 'azure', models: ['smart'], priority: 3 },
    ],
  });

describe('providerGuard', () => {
  it('vetoes endpoints whose provider does not support the operation, with a reason', () => {
    const router = pool();
    const guard = providerGuard();
    const claude = router.getEndpoint('claude')!;
    const veto = guard.admit(claude, { operation: 'embeddings' }, 0);
    expect(veto).toEqual({ reason: 'provider anthropic does not support embeddings' });
    expect(guard.admit(claude, { operation: 'embeddings' }, 0)).toBe(veto); // cached: no allocation per call
    expect(guard.admit(claude, { operation: 'chat.completions' }, 0)).toBe(true);
    expect(guard.admit(claude, {}, 0)).toBe(true);
    expect(guard.admit(router.getEndpoint('az')!, { operation: 'moderations' }, 0)).not.toBe(true);
  });

  it('routes around unsupported providers inside the router', () => {
    const router = pool();
    router.addGuard(providerGuard());
    expect(router.pick({ model: 'smart', operation: 'chat.completions' })?.endpoint.id).toBe('claude');
    expect(router.pick({ model: 'smart', operation: 'embeddings' })?.endpoint.id).toBe('oai');
    expect(router.pick({ model: 'smart', operation: 'moderations' })?.endpoint.id).toBe('oai');
    expect(router.pick({ model: 'claude-only', operation: 'embeddings' })).toBeUndefined();
  });

  it('vetoes endpoints of unknown providers and admits them once registered', () => {
    const router = createRouter({ endpoints: [{ id: 'x', url: 'https://x.example', provider: 'mystery' }] });
    const guard = providerGuard();
    const ep = router.getEndpoint('x')!;
    expect(guard.admit(ep, { operation: 'chat.completions' }, 0)).toEqual({
      reason: 'unknown provider mystery',
    });
    const off = registerDialect({
      name: 'mystery',
      supports: () => true,
      prepare: () => ({ url: '', method: 'POST', headers: {}, body: undefined }),
    });
    try {
      expect(guard.admit(ep, { operation: 'chat.completions' }, 0)).toBe(true);
    } finally {
      off();
    }
  });
});

describe('explainUnservable', () => {
  it('is undefined when some endpoint can serve, healthy or not', () => {
    const router = pool();
    expect(explainUnservable(router, { operation: 'embeddings', model: 'smart' })).toBeUndefined();
    router.setEndpointHealth('oai', false);
    expect(explainUnservable(router, { operation: 'embeddings', model: 'smart' })).toBeUndefined();
    expect(explainUnservable(router, { operation: 'chat.completions' })).toBeUndefined();
  });

  it('400 when the model is served but no provider supports the operation, rendered as OpenAI error JSON', () => {
    const problem = explainUnservable(pool(), { operation: 'embeddings', model: 'claude-only' });
    expect(isProviderError(problem)).toBe(true);
    expect(problem?.status).toBe(400);
    expect(problem?.toOpenAIError()).toEqual({
      error: {
        message:
          'No endpoint serving model `claude-only` supports embeddings: its provider (anthropic) cannot serve this operation.',
        type: 'invalid_request_error',
        code: 'unsupported_operation',
        param: null,
      },
    });
  });

  it('404 model_not_found when nothing serves the model', () => {
    const problem = explainUnservable(pool(), { operation: 'chat.completions', model: 'gpt-9' });
    expect(problem?.status).toBe(404);
    expect(problem?.code).toBe('model_not_found');
    expect(problem?.message).toBe('The model `gpt-9` does not exist or you do not have access to it.');
  });

  it('reads model groups', () => {
    const router = createRouter({
      endpoints: [
        { id: 'claude', url: 'https://api.anthropic.com/v1', provider: 'anthropic' },
        { id: 'oai', url: 'https://api.openai.com/v1' },
      ],
      models: { best: { backends: [{ endpoint: 'claude', model: 'claude-opus-4-1' }] } },
    });
    expect(explainUnservable(router, { operation: 'embeddings', model: 'best' })?.status).toBe(400);
    expect(explainUnservable(router, { operation: 'chat.completions', model: 'best' })).toBeUndefined();
  });
});
