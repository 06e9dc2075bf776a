import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import { api, inMemoryTracing, type ReadableSpan } from '@lb/testing/otel';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type LbServer } from '../src/index.js';

// lb-server with the OTel SDK's in-memory exporter: a server span per request continuing the client's traceparent,
// a client span per attempt, and each attempt's context in its upstream request.

let tracing: ReturnType<typeof inMemoryTracing>;
let a: FakeUpstream;
let b: FakeUpstream;
let server: LbServer;
let base: string;
const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const clientSpan = '00f067aa0ba902b7';

beforeAll(async () => {
  tracing = inMemoryTracing();
  api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  [a, b] = await Promise.all([startFakeUpstream({ name: 'a' }), startFakeUpstream({ name: 'b' })]);
  server = createServer({
    router: {
      endpoints: [
        { id: 'a', url: a.url, apiKey: fakeKey('a'), priority: 1 },
        { id: 'b', url: b.url, apiKey: fakeKey('b'), priority: 2 },
      ],
      backoff: { initialMs: 1, maxMs: 2 },
    },
    server: { port: 0 },
    breaker: { enabled: false },
    logDestination: { write: () => true } as any,
  });
  base = await server.listen();
});

afterAll(async () => {
  await server.close(100);
  await Promise.all([a.close(), b.close()]);
  tracing.close();
});

beforeEach(() => tracing.exporter.reset());

const finished = (pred: (s: ReadableSpan) => boolean) => tracing.finished(pred);
const isRequest = (s: ReadableSpan) => s.kind === api.SpanKind.SERVER;

describe('OpenTelemetry in lb-server', () => {
  it('continues the client trace, spans each attempt and sends its context upstream', async () => {
    a.next({ type: 'status', status: 502 });
    const client = new OpenAI({
      baseURL: `${base}/v1`,
      apiKey: 'x',
      maxRetries: 0,
      defaultHeaders: { traceparent: `00-${traceId}-${clientSpan}-01` },
    });
    const res = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })
      .withResponse();
    expect(res.response.headers.get('x-lb-endpoint')).toBe('b');
    const request = await finished(isRequest);
    expect(request.spanContext().traceId).toBe(traceId);
    expect(request.parentSpanContext?.spanId).toBe(clientSpan);
    expect(request.name).toBe('chat gpt-4o-mini');
    expect(request.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o-mini',
      'lb.endpoint': 'b',
      'lb.fallback': true,
      'gen_ai.usage.input_tokens': expect.any(Number),
      'gen_ai.usage.output_tokens': expect.any(Number),
    });
    const attempts = tracing
      .spans((s) => s.kind === api.SpanKind.CLIENT)
      .sort((x, y) => Number(x.attributes['lb.attempt']) - Number(y.attributes['lb.attempt']));
    expect(attempts.map((s) => [s.attributes['lb.endpoint'], s.attributes['lb.verdict']])).toEqual([
      ['a', 'server'],
      ['b', 'success'],
    ]);
    expect(attempts[1].attributes).toMatchObject({
      'gen_ai.system': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini',
      'gen_ai.usage.output_tokens': expect.any(Number),
    });
    for (const s of attempts) expect(s.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(a.requests.at(-1)!.headers.traceparent).toBe(
      `00-${traceId}-${attempts[0].spanContext().spanId}-01`,
    );
    expect(b.requests.at(-1)!.headers.traceparent).toBe(
      `00-${traceId}-${attempts[1].spanContext().spanId}-01`,
    );
  });

  it('starts a new trace without a client traceparent, and ends a streamed request with its stream', async () => {
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'x', maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const _ of stream) {
      // drain
    }
    const request = await finished(isRequest);
    expect(request.parentSpanContext).toBeUndefined();
    expect(request.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
    const attempt = await finished((s) => s.kind === api.SpanKind.CLIENT);
    expect(attempt.attributes['lb.verdict']).toBe('success');
    expect(a.requests.at(-1)!.headers.traceparent).toBe(
      `00-${request.spanContext().traceId}-${attempt.spanContext().spanId}-01`,
    );
  });
});
