import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRouter } from '@lb/core';
import { createOpenAI } from '@lb/openai-adapter';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import { api, inMemoryTracing, type ReadableSpan } from '@lb/testing/otel';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTracing, type LbTracing, loadOtelApi } from '../src/index.js';

// The adapter in-process: the caller's active span is the parent, each attempt's span goes upstream as traceparent.
// No propagator is registered here: lb writes W3C trace context itself.

let mem: ReturnType<typeof inMemoryTracing>;
let a: FakeUpstream;
let b: FakeUpstream;

beforeAll(async () => {
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  mem = inMemoryTracing();
  [a, b] = await Promise.all([startFakeUpstream({ name: 'a' }), startFakeUpstream({ name: 'b' })]);
});

afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
  mem.close();
});

const exporter = { getFinishedSpans: () => mem.spans() };
beforeEach(() => mem.exporter.reset());

function setup(): { tracing: LbTracing; client: ReturnType<typeof createOpenAI> } {
  const router = createRouter({
    endpoints: [
      { id: 'a', url: a.url, apiKey: fakeKey('a'), priority: 1 },
      { id: 'b', url: b.url, apiKey: fakeKey('b'), priority: 2 },
    ],
    backoff: { initialMs: 1, maxMs: 2 },
  });
  const tracing = createTracing(router)!;
  return { tracing, client: createOpenAI(router, { tracing }) };
}

const byName = (spans: ReadableSpan[], attempt: number) =>
  spans.find((s) => s.attributes['lb.attempt'] === attempt && s.kind === api.SpanKind.CLIENT)!;
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe('createTracing with the adapter', () => {
  it('resolves @opentelemetry/api once, when installed', () => {
    expect(loadOtelApi()).toBe(loadOtelApi());
    expect((loadOtelApi() as typeof api).trace).toBeDefined();
  });

  it('without @opentelemetry/api installed, sets nothing up', () => {
    // The built module, copied where no node_modules can resolve the API (what a user without it gets), run by a
    // plain node process.
    const dir = mkdtempSync(join(tmpdir(), 'lb-otel-absent-'));
    copyFileSync(fileURLToPath(new URL('../dist/index.js', import.meta.url)), join(dir, 'index.js'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    const core = pathToFileURL(createRequire(import.meta.url).resolve('@lb/core')).href;
    const script = `
      const { loadOtelApi, createTracing } = await import('./index.js');
      const { createRouter } = await import(${JSON.stringify(core)});
      const router = createRouter({ endpoints: [{ id: 'a', url: 'http://127.0.0.1:9/v1' }] });
      const before = router.listenerCount('attempt:start');
      const t = createTracing(router);
      console.log(JSON.stringify({ api: loadOtelApi() === undefined, tracing: t === undefined, added: router.listenerCount('attempt:start') - before }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: dir,
      encoding: 'utf8',
      // Nothing inherited from the test runner's environment (its NODE_OPTIONS and the like).
      env: { PATH: process.env.PATH },
    });
    expect(JSON.parse(out)).toEqual({ api: true, tracing: true, added: 0 });
  });

  it('makes a request span under the active span and a child per attempt, with GenAI and lb attributes', async () => {
    const { tracing, client } = setup();
    a.next({ type: 'status', status: 500 });
    const tracer = api.trace.getTracer('test');
    const parent = await tracer.startActiveSpan('caller', async (span) => {
      await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'x' }],
      });
      span.end();
      return span.spanContext();
    });
    const spans = exporter.getFinishedSpans();
    const request = spans.find((s) => s.attributes['lb.request_id'] !== undefined)!;
    expect(request.spanContext().traceId).toBe(parent.traceId);
    expect(parentOf(request)).toBe(parent.spanId);
    expect(request.name).toBe('chat gpt-4o-mini');
    expect(request.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o-mini',
      'lb.endpoint': 'b',
      'lb.attempt': 2,
      'lb.fallback': true,
      'gen_ai.usage.input_tokens': expect.any(Number),
      'gen_ai.usage.output_tokens': expect.any(Number),
    });
    expect(request.status.code).toBe(api.SpanStatusCode.OK);

    const first = byName(spans, 1);
    const second = byName(spans, 2);
    expect(parentOf(first)).toBe(request.spanContext().spanId);
    expect(parentOf(second)).toBe(request.spanContext().spanId);
    expect(first.attributes).toMatchObject({
      'gen_ai.system': 'openai',
      'lb.endpoint': 'a',
      'lb.verdict': 'server',
      'http.response.status_code': 500,
    });
    expect(first.status.code).toBe(api.SpanStatusCode.ERROR);
    expect(second.attributes).toMatchObject({
      'gen_ai.system': 'openai',
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini',
      'lb.endpoint': 'b',
      'lb.attempt': 2,
      'lb.verdict': 'success',
      'gen_ai.usage.input_tokens': expect.any(Number),
    });
    // Each upstream saw its own attempt's span as the parent, in the caller's trace.
    const tpA = a.requests.at(-1)!.headers.traceparent as string;
    const tpB = b.requests.at(-1)!.headers.traceparent as string;
    expect(tpA).toBe(`00-${parent.traceId}-${first.spanContext().spanId}-01`);
    expect(tpB).toBe(`00-${parent.traceId}-${second.spanContext().spanId}-01`);
    tracing.dispose();
  });

  it('with a no-op tracer, makes no attempt spans and passes the caller’s context upstream', async () => {
    const router = createRouter({ endpoints: [{ id: 'a', url: a.url, apiKey: fakeKey('a') }] });
    const noop = new api.ProxyTracerProvider();
    const trace = Object.assign(Object.create(api.trace), { getTracer: () => noop.getTracer('noop') });
    const tracing = createTracing(router, { api: { ...api, trace } })!;
    const client = createOpenAI(router, { tracing });
    const parent = await api.trace.getTracer('test').startActiveSpan('caller', async (span) => {
      await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'x' }],
      });
      span.end();
      return span.spanContext();
    });
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['caller']);
    expect(a.requests.at(-1)!.headers.traceparent).toBe(`00-${parent.traceId}-${parent.spanId}-01`);
    tracing.dispose();
  });

  it('with the API but no SDK registered, starts nothing per request; an SDK registered later is seen', async () => {
    const router = createRouter({ endpoints: [{ id: 'a', url: a.url, apiKey: fakeKey('a') }] });
    // A global provider with no SDK behind it (what `@opentelemetry/api` alone gives), counting the spans started.
    const provider = new api.ProxyTracerProvider();
    let started = 0;
    const counting = (t: ReturnType<typeof provider.getTracer>) =>
      Object.assign(Object.create(t), {
        startSpan: (...args: Parameters<typeof t.startSpan>) => {
          started++;
          return t.startSpan(...args);
        },
      });
    const trace = Object.assign(Object.create(api.trace), {
      getTracerProvider: () => provider,
      getTracer: (name: string) => counting(provider.getTracer(name)),
    });
    const tracing = createTracing(router, { api: { ...api, trace } })!;
    const client = createOpenAI(router, { tracing });
    const ask = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'x' }] };
    await client.chat.completions.create(ask);
    expect(started).toBe(0);
    expect(a.requests.at(-1)!.headers.traceparent).toBeUndefined();
    // The SDK registered after lb started: the next request is traced, its attempt's span goes upstream.
    provider.setDelegate(
      (api.trace.getTracerProvider() as InstanceType<typeof api.ProxyTracerProvider>).getDelegate(),
    );
    await client.chat.completions.create(ask);
    expect(started).toBe(2);
    expect(a.requests.at(-1)!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    tracing.dispose();
  });

  it('ends a streamed request with its stream, and marks an exhausted one as an error', async () => {
    const { tracing, client } = setup();
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    // The request span is still open while the stream flows.
    expect(
      exporter.getFinishedSpans().filter((s) => s.attributes['lb.request_id'] !== undefined),
    ).toHaveLength(0);
    for await (const _ of stream) {
      // drain
    }
    await new Promise<void>((resolve) => {
      const check = () =>
        exporter.getFinishedSpans().some((s) => s.attributes['lb.request_id'] !== undefined)
          ? resolve()
          : setImmediate(check);
      check();
    });
    const request = exporter.getFinishedSpans().find((s) => s.attributes['lb.request_id'] !== undefined)!;
    expect(request.attributes['lb.fallback']).toBe(false);
    expect(request.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
    const attempt = byName(exporter.getFinishedSpans(), 1);
    expect(attempt.status.code).toBe(api.SpanStatusCode.OK);
    expect(parentOf(attempt)).toBe(request.spanContext().spanId);

    mem.exporter.reset();
    a.setDefault({ type: 'status', status: 503 });
    b.setDefault({ type: 'status', status: 503 });
    const err = await client.embeddings
      .create({ model: 'text-embedding-3-small', input: 'x' })
      .catch((e) => e)
      .finally(() => {
        a.setDefault({ type: 'ok' });
        b.setDefault({ type: 'ok' });
      });
    expect(err.status).toBe(502); // every endpoint failed: the router's verdict, as lb-server answers it
    const failed = exporter.getFinishedSpans().find((s) => s.attributes['lb.request_id'] !== undefined)!;
    expect(failed.status.code).toBe(api.SpanStatusCode.ERROR);
    expect(failed.name).toBe('embeddings text-embedding-3-small');
    const attempts = exporter.getFinishedSpans().filter((s) => s.kind === api.SpanKind.CLIENT);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(failed.attributes['lb.attempts']).toBe(attempts.length);
    for (const s of attempts) expect(s.attributes['lb.verdict']).toBe('server');
    tracing.dispose();
  });
});
