import { createRouter, LbError, NoHealthyEndpointError } from '@lb/core';
import { describe, expect, it } from 'vitest';
import {
  CreatedIdTap,
  createdIdIn,
  createsObject,
  FallbackRun,
  fallbackCauseOf,
  fallbackCauseOfError,
  isObjectRoute,
  MemoryAffinityStore,
  modelsWithFallbacks,
  objectIdsIn,
  parseFallbackList,
  pinnedEndpoint,
} from '../src/index.js';

const router = createRouter({
  endpoints: [
    { id: 'a', url: 'http://127.0.0.1:1/v1', apiKey: 'k-a' },
    { id: 'b', url: 'http://127.0.0.1:1/v1', apiKey: 'k-b' },
  ],
});

describe('fallback causes', () => {
  it('reads them from 4xx bodies only', () => {
    expect(fallbackCauseOf(400, '{"error":{"code":"context_length_exceeded"}}')).toBe('context_window');
    expect(fallbackCauseOf(400, '{"error":{"message":"prompt is too long: 1 > 0"}}')).toBe('context_window');
    expect(fallbackCauseOf(400, '{"error":{"code":"content_filter"}}')).toBe('content_policy');
    expect(fallbackCauseOf(400, '{"innererror":{"code":"ResponsibleAIPolicyViolation"}}')).toBe(
      'content_policy',
    );
    expect(fallbackCauseOf(404, '{"error":{"code":"model_not_found"}}')).toBe('default');
    expect(fallbackCauseOf(400, '{"error":{"code":"invalid_value"}}')).toBeUndefined();
    expect(fallbackCauseOf(200, '"finish_reason":"content_filter"')).toBeUndefined();
    expect(fallbackCauseOf(500, 'context_length_exceeded')).toBeUndefined();
  });

  it('the default cause from router errors; a deadline is none', () => {
    expect(fallbackCauseOfError(new NoHealthyEndpointError({ attempts: [], model: 'm' }))).toBe('default');
    expect(
      fallbackCauseOfError(
        new LbError('x', { status: 404, type: 'invalid_request_error', code: 'model_not_found' }),
      ),
    ).toBe('default');
    expect(fallbackCauseOfError(new Error('boom'))).toBeUndefined();
  });

  it('parses x-lb-fallbacks lists', () => {
    expect(parseFallbackList(' a, b ,,a ')).toEqual(['a', 'b']);
    expect(parseFallbackList('')).toBeUndefined();
    expect(parseFallbackList(['a', 3, 'b'])).toEqual(['a', 'b']);
  });
});

describe('FallbackRun', () => {
  it('walks the cause chain of the failed model, then of the primary; never a model twice', () => {
    const seen: string[] = [];
    router.on('fallback', (e) => seen.push(`${e.from}>${e.to}:${e.cause}`));
    const run = new FallbackRun(
      'x',
      { default: { x: ['y', 'z'], y: ['x'] }, contextWindow: { y: ['w'] } },
      undefined,
      10_000,
    );
    expect(run.next('default', router, 'r1')).toBe('y');
    expect(run.next('context_window', router, 'r1')).toBe('w');
    expect(run.next('default', router, 'r1')).toBe('z');
    expect(run.next('default', router, 'r1')).toBeUndefined();
    expect(run.taken).toBe(true);
    expect(seen).toEqual(['x>y:default', 'y>w:context_window', 'w>z:default']);
  });

  it("a request's own chain replaces the configured ones for every cause", () => {
    const run = new FallbackRun('x', { default: { x: ['y'] } }, ['q'], 10_000);
    expect(run.wantsBody(400)).toBe(true);
    expect(run.next('content_policy', router, 'r')).toBe('q');
    expect(run.wantsBody(400)).toBe(false);
  });

  it('nothing is left once the deadline passed', () => {
    const run = new FallbackRun('x', { default: { x: ['y'] } }, undefined, 0);
    expect(run.next('default', router, 'r')).toBeUndefined();
  });

  it('lists the chains in /v1/models', () => {
    expect(modelsWithFallbacks(['a'], { default: { k: ['a', 'b'] }, contentPolicy: { a: ['c'] } })).toEqual([
      'a',
      'k',
      'b',
      'c',
    ]);
  });
});

describe('object affinity', () => {
  it('knows the object routes by their first segment', () => {
    for (const p of ['/files', '/files/file-1', '/batches?limit=2', '/responses/resp_1', '/fine_tuning/jobs'])
      expect(isObjectRoute(p), p).toBe(true);
    for (const p of ['/chat/completions', '/embeddings', '/filesx', '/responsesx/1', '/', '/models'])
      expect(isObjectRoute(p), p).toBe(false);
  });

  it('finds the ids a call names, in its path and body', () => {
    expect(objectIdsIn('/threads/thread_1/runs/run_2?x=1', undefined)).toEqual(['thread_1', 'run_2']);
    expect(objectIdsIn('/batches', { input_file_id: 'file-9' })).toEqual(['file-9']);
    expect(
      objectIdsIn('/responses', { previous_response_id: 'resp_1', conversation: { id: 'conv_2' } }),
    ).toEqual(['resp_1', 'conv_2']);
    expect(objectIdsIn('/vector_stores/vs_1/file_batches', { file_ids: ['file-1', 'x'] })).toEqual([
      'vs_1',
      'file-1',
    ]);
    expect(objectIdsIn('/files', { purpose: 'batch' })).toEqual([]);
  });

  it('pins to the remembered endpoint; x-lb-endpoint wins; an unknown id is a 400', async () => {
    const store = new MemoryAffinityStore();
    store.set('file-1', 'b', 60_000);
    expect(await pinnedEndpoint(router, store, undefined, '/files/file-1', undefined)).toEqual({
      endpointId: 'b',
      objectId: 'file-1',
    });
    expect(
      await pinnedEndpoint(router, store, undefined, '/chat/completions', () => ({ file_id: 'file-1' })),
    ).toBe(undefined);
    expect(await pinnedEndpoint(router, store, 'a', '/files/file-1', undefined)).toEqual({ endpointId: 'a' });
    await expect(pinnedEndpoint(router, store, 'zz', '/files', undefined)).rejects.toMatchObject({
      status: 400,
      code: 'unknown_endpoint',
    });
  });

  it('forgets expired ids and keeps at most maxEntries', () => {
    const store = new MemoryAffinityStore({ maxEntries: 2 });
    store.set('file-1', 'a', 60_000);
    store.set('file-2', 'a', 60_000);
    store.set('file-3', 'a', 60_000);
    expect(store.get('file-1')).toBeUndefined();
    expect(store.get('file-3')).toBe('a');
    store.set('file-4', 'a', -1);
    expect(store.get('file-4')).toBeUndefined();
  });

  it('reads the created id from an answer split anywhere, and passes the bytes on untouched', () => {
    const body = '{"id":"file-abc","object":"file"}';
    const out: string[] = [];
    let found: string | undefined;
    const tap = new CreatedIdTap(
      { data: (c) => out.push(new TextDecoder().decode(c)) > 0, end: () => {}, error: () => {} },
      (id) => {
        found = id;
      },
    );
    for (const part of [body.slice(0, 9), body.slice(9)]) tap.data(new TextEncoder().encode(part));
    tap.end();
    expect(found).toBe('file-abc');
    expect(out.join('')).toBe(body);
    expect(
      createdIdIn('data: {"type":"response.created","response":{"id":"resp_7","object":"response"}}'),
    ).toBe('resp_7');
    expect(createsObject('POST', '/responses', { store: false })).toBe(false);
    expect(createsObject('POST', '/files', undefined)).toBe(true);
    expect(createsObject('GET', '/files', undefined)).toBe(false);
  });
});
