import { createRouter } from '@lb/core';
import { describe, expect, it } from 'vitest';
import {
  explainUnservable,
  isProviderError,
  providerGuard,
  registerDialect,
  requestFeatures,
} from '../src/index.js';

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

describe('request features', () => {
  const chat = 'chat.completions';
  const messages = [{ role: 'user', content: 'hi' }];

  it('names what a body asks beyond the operation, and nothing (no array) for the usual body', () => {
    expect(requestFeatures(chat, { model: 'm', messages })).toBeUndefined();
    expect(
      requestFeatures(chat, { model: 'm', messages, n: 1, logprobs: false, top_logprobs: 0 }),
    ).toBeUndefined();
    expect(requestFeatures(chat, { messages, n: 2 })).toEqual(['n']);
    expect(requestFeatures(chat, { messages, n: 2 })).toBe(requestFeatures(chat, { messages, n: 5 }));
    expect(requestFeatures(chat, { messages, logprobs: true })).toEqual(['logprobs']);
    expect(requestFeatures(chat, { messages, top_logprobs: 3 })).toEqual(['logprobs']);
    expect(requestFeatures('completions', { prompt: 'x', logprobs: 2 })).toEqual(['logprobs']);
    expect(requestFeatures(chat, { messages, modalities: ['text', 'audio'] })).toEqual(['audio']);
    expect(requestFeatures(chat, { messages, audio: { voice: 'alloy', format: 'wav' } })).toEqual(['audio']);
    expect(requestFeatures(chat, { messages, n: 2, logprobs: true, audio: {} })).toEqual([
      'n',
      'logprobs',
      'audio',
    ]);
    expect(requestFeatures('embeddings', { input: 'x', n: 2 })).toBeUndefined();
    expect(requestFeatures(chat, undefined)).toBeUndefined();
  });

  it('the guard keeps them off providers that lack them (cached vetoes), the router picks the next endpoint', () => {
    const router = pool();
    const guard = providerGuard();
    const claude = router.getEndpoint('claude')!;
    const n = requestFeatures(chat, { messages, n: 2 });
    const veto = guard.admit(claude, { operation: chat, features: n }, 0);
    expect(veto).toEqual({ reason: 'provider anthropic cannot honour n' });
    expect(guard.admit(claude, { operation: chat, features: n }, 0)).toBe(veto);
    expect(guard.admit(router.getEndpoint('az')!, { operation: chat, features: n }, 0)).toBe(true);
    router.addGuard(guard);
    expect(router.pick({ model: 'smart', operation: chat, features: n })?.endpoint.id).toBe('oai');
    expect(router.pick({ model: 'smart', operation: chat })?.endpoint.id).toBe('claude');
    expect(router.pick({ model: 'claude-only', operation: chat, features: ['logprobs'] })).toBeUndefined();
  });

  it('explainUnservable: 400 unsupported_parameter with the param when no provider serving the model honours it', () => {
    const router = pool();
    expect(explainUnservable(router, { operation: chat, model: 'smart', features: ['n'] })).toBeUndefined();
    const problem = explainUnservable(router, {
      operation: chat,
      model: 'claude-only',
      features: ['logprobs'],
    });
    expect(problem?.status).toBe(400);
    expect(problem?.toOpenAIError()).toEqual({
      error: {
        message:
          'No endpoint serving model `claude-only` can honour log probabilities (`logprobs`): its provider (anthropic) cannot. Drop the parameter or route to an endpoint that supports it.',
        type: 'invalid_request_error',
        code: 'unsupported_parameter',
        param: 'logprobs',
      },
    });
  });
});
