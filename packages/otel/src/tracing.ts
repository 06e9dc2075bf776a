import type { Router } from '@lb/core';
import type * as Otel from '@opentelemetry/api';
import { loadOtelApi } from './load.js';

/** Options of {@link createTracing}. */
export interface TracingOptions {
  /**
   * The `@opentelemetry/api` module to use. Default: the installed one (resolved once per process); when none is
   * installed, {@link createTracing} returns undefined and nothing is traced.
   */
  api?: object;
  /** Tracer name. Default `@lb/otel`. */
  tracerName?: string;
  /**
   * The request span's kind: `'server'` for a gateway (lb-server), `'internal'` in-process (the adapter, whose
   * attempt spans are the client calls). Default `'internal'`.
   */
  requestKind?: 'server' | 'internal';
}

/** Incoming headers, as Node gives them. */
export type HeaderCarrier = Record<string, string | string[] | undefined>;

/**
 * Traces of a router: a span per request and a child span per attempt, fed by the router's bus. Two calls let a
 * caller carry the trace context: {@link LbTracing.continueFrom} before routing (a gateway's client headers) and
 * {@link LbTracing.inject} in each attempt (the upstream request's headers).
 */
export interface LbTracing {
  /**
   * The request with this id continues the trace in these headers (`traceparent`, `tracestate`) and is this
   * operation (`chat.completions`…). Call before routing it; without it the request's parent is the active context
   * when its first attempt starts.
   */
  continueFrom(requestId: string, headers: HeaderCarrier | undefined, operation?: string): void;
  /** Writes the current attempt span's context (`traceparent`, `tracestate`) into an upstream request's headers. */
  inject(requestId: string, headers: Record<string, string>, operation?: string): void;
  /** Unsubscribes and ends the spans still open. Idempotent. */
  dispose(): void;
}

const OPERATIONS: Record<string, string> = {
  'chat.completions': 'chat',
  responses: 'chat',
  completions: 'text_completion',
  embeddings: 'embeddings',
};

const SYSTEMS: Record<string, string> = {
  azure: 'az.ai.openai',
  bedrock: 'aws.bedrock',
  vertex: 'vertex_ai',
};

/** How long a done request waits for its token usage before its spans end without it, ms. */
const USAGE_WAIT_MS = 2000;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

interface RequestState {
  parent: Otel.Context;
  operation: string | undefined;
  span: Otel.Span | undefined;
  ctx: Otel.Context | undefined;
  recording: boolean;
  attempt: Otel.Span | undefined;
  attemptCtx: Otel.Context | undefined;
  attemptModel: string | undefined;
  requestModel: string | undefined;
  firstEndpoint: string | undefined;
  /** The serving attempt holds its stream: the request ends with it. */
  held: boolean;
  done: boolean;
  /** Epoch ms the request was done while its token usage may still come (read from the body after it). */
  doneAt: number;
  usage: boolean;
}

/**
 * Traces a router with OpenTelemetry, when `@opentelemetry/api` is installed (else returns undefined: nothing is
 * subscribed, nothing is added to a request). Spans follow the GenAI semantic conventions (`gen_ai.system`,
 * `gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.input_tokens`,
 * `gen_ai.usage.output_tokens`) plus lb's own (`lb.endpoint`, `lb.attempt`, `lb.verdict`, `lb.fallback`). Register
 * an SDK (`@opentelemetry/sdk-node`) in your own entry point: without one the API's tracer is a no-op.
 *
 * @example
 * const tracing = createTracing(router); // undefined without @opentelemetry/api
 * const client = createOpenAI(router, { tracing });
 */
export function createTracing(router: Router, options: TracingOptions = {}): LbTracing | undefined {
  const api = (options.api ?? loadOtelApi()) as typeof Otel | undefined;
  if (api === undefined) return undefined;
  const tracer = api.trace.getTracer(options.tracerName ?? '@lb/otel');
  const requestKind = options.requestKind === 'server' ? api.SpanKind.SERVER : api.SpanKind.INTERNAL;
  const states = new Map<string, RequestState>();
  const pending = new Map<string, { parent: Otel.Context; operation: string | undefined }>();
  const ERROR = api.SpanStatusCode.ERROR;
  const OK = api.SpanStatusCode.OK;
  // The API installed with no SDK registered (its global provider has no delegate) and no propagator: every span
  // would be a no-op and nothing would be injected that the client did not send itself (lb-server forwards the
  // client's `traceparent` as it came). Then the hooks do nothing: a property read and a compare per call. An SDK
  // registered later (`trace.setGlobalTracerProvider`) is seen at the next request.
  const provider = api.trace.getTracerProvider() as Partial<Otel.ProxyTracerProvider>;
  const noSdk =
    typeof provider.getDelegateTracer === 'function' &&
    typeof provider.getDelegate === 'function' &&
    provider.getDelegateTracer(options.tracerName ?? '@lb/otel') === undefined
      ? provider.getDelegate()
      : undefined;
  const idle = (): boolean =>
    noSdk !== undefined && provider.getDelegate!() === noSdk && api.propagation.fields().length === 0;

  const extract = (headers: HeaderCarrier): Otel.Context => {
    if (api.propagation.fields().length > 0)
      return api.propagation.extract(api.ROOT_CONTEXT, headers, {
        keys: (c) => Object.keys(c),
        get: (c, k) => c[k],
      });
    // No propagator registered: W3C trace context by hand.
    const tp = headers.traceparent;
    const m = typeof tp === 'string' ? TRACEPARENT.exec(tp) : null;
    if (!m || /^0+$/.test(m[1]) || /^0+$/.test(m[2])) return api.ROOT_CONTEXT;
    return api.trace.setSpanContext(api.ROOT_CONTEXT, {
      traceId: m[1],
      spanId: m[2],
      traceFlags: Number.parseInt(m[3], 16) & 1,
      isRemote: true,
    });
  };

  const end = (id: string, st: RequestState, at?: number) => {
    st.attempt?.end(at);
    st.span?.end(at);
    states.delete(id);
  };
  // A request is done at its response headers, but its token usage comes with the body, after: its spans stay open
  // until then. Responses without usage (images, audio…) are ended by this sweep at the time they were done.
  const awaiting = new Set<string>();
  const sweep = setInterval(() => {
    const old = Date.now() - USAGE_WAIT_MS;
    for (const id of awaiting) {
      const st = states.get(id);
      if (st === undefined) awaiting.delete(id);
      else if (st.doneAt <= old) {
        awaiting.delete(id);
        end(id, st, st.doneAt);
      }
    }
  }, USAGE_WAIT_MS);
  sweep.unref?.();
  /** The request is done and its stream, if any, ended: end now, or once its usage comes. */
  const settle = (id: string, st: RequestState) => {
    // A span that records nothing has no usage to wait for.
    if (st.usage || !st.recording) return end(id, st);
    st.doneAt = Date.now();
    awaiting.add(id);
  };

  const offs = [
    router.on('attempt:start', (e) => {
      let st = states.get(e.requestId);
      if (st === undefined) {
        if (idle()) {
          pending.delete(e.requestId);
          return;
        }
        const p = pending.get(e.requestId);
        if (p !== undefined) pending.delete(e.requestId);
        st = {
          parent: p?.parent ?? api.context.active(),
          operation: p?.operation,
          span: undefined,
          ctx: undefined,
          recording: false,
          attempt: undefined,
          attemptCtx: undefined,
          attemptModel: undefined,
          requestModel: e.model,
          firstEndpoint: e.endpointId,
          held: false,
          done: false,
          doneAt: 0,
          usage: false,
        };
        const op = st.operation !== undefined ? (OPERATIONS[st.operation] ?? st.operation) : undefined;
        const span = tracer.startSpan(
          op !== undefined ? `${op} ${e.model ?? ''}`.trim() : `lb ${e.model ?? 'request'}`,
          { kind: requestKind },
          st.parent,
        );
        st.span = span;
        st.recording = span.isRecording();
        if (st.recording) {
          st.ctx = api.trace.setSpan(st.parent, span);
          if (op !== undefined) span.setAttribute('gen_ai.operation.name', op);
          if (e.model !== undefined) span.setAttribute('gen_ai.request.model', e.model);
          span.setAttribute('lb.request_id', e.requestId);
        }
        states.set(e.requestId, st);
      }
      // A request span that records nothing (a no-op tracer, or not sampled) gets no attempt spans: its own context
      // (the client's, through a no-op tracer) is what goes upstream.
      if (!st.recording) return;
      st.attempt?.end();
      const model = e.upstreamModel ?? e.model;
      const op = st.operation !== undefined ? (OPERATIONS[st.operation] ?? st.operation) : undefined;
      const a = tracer.startSpan(
        op !== undefined ? `${op} ${model ?? ''}`.trim() : `lb attempt ${e.attempt}`,
        { kind: api.SpanKind.CLIENT },
        st.ctx,
      );
      st.attempt = a;
      st.attemptModel = model;
      st.attemptCtx = api.trace.setSpan(st.ctx!, a);
      if (a.isRecording()) {
        a.setAttribute('gen_ai.system', SYSTEMS[e.endpoint.provider] ?? e.endpoint.provider);
        if (op !== undefined) a.setAttribute('gen_ai.operation.name', op);
        if (model !== undefined) a.setAttribute('gen_ai.request.model', model);
        a.setAttribute('lb.endpoint', e.endpointId);
        a.setAttribute('lb.attempt', e.attempt);
      }
    }),
    router.on('attempt:success', (e) => {
      const st = states.get(e.requestId);
      const a = st?.attempt;
      if (st === undefined || a === undefined) return;
      const model = e.model;
      if (a.isRecording()) {
        a.setAttribute('lb.verdict', 'success');
        if (e.status !== undefined) a.setAttribute('http.response.status_code', e.status);
        // lb reads no response body for this: the model the upstream was asked for.
        const asked = st.attemptModel ?? model;
        if (asked !== undefined) a.setAttribute('gen_ai.response.model', asked);
      }
      if (st.recording) {
        st.span!.setAttribute('lb.endpoint', e.endpointId);
        st.span!.setAttribute('lb.attempt', e.attempt);
        st.span!.setAttribute('lb.fallback', e.endpointId !== st.firstEndpoint);
        if (e.status !== undefined) st.span!.setAttribute('http.response.status_code', e.status);
      }
      a.setStatus({ code: OK });
      if (e.held) st.held = true;
    }),
    router.on('attempt:failure', (e) => {
      const st = states.get(e.requestId);
      const a = st?.attempt;
      if (st === undefined || a === undefined) return;
      if (a.isRecording()) {
        a.setAttribute('lb.verdict', e.kind);
        a.setAttribute('error.type', e.kind);
        if (e.status !== undefined) a.setAttribute('http.response.status_code', e.status);
      }
      a.setStatus({ code: ERROR, message: e.message });
      a.end();
      st.attempt = undefined;
    }),
    router.on('attempt:end', (e) => {
      const st = states.get(e.requestId);
      if (st === undefined) return;
      const a = st.attempt;
      if (a !== undefined) {
        if (!e.ok && a.isRecording()) {
          a.setAttribute('lb.verdict', e.kind);
          a.setAttribute('error.type', e.kind);
        }
        a.setStatus(e.ok ? { code: OK } : { code: ERROR, message: e.message });
      }
      if (!e.ok) st.span?.setStatus({ code: ERROR, message: e.message });
      st.held = false;
      if (st.done) settle(e.requestId, st);
    }),
    router.on('attempt:usage', (e) => {
      const st = states.get(e.requestId);
      if (st === undefined) return;
      const u = e.usage;
      if (st.recording) {
        for (const s of [st.span!, st.attempt]) {
          if (s === undefined) continue;
          if (u.prompt_tokens !== undefined) s.setAttribute('gen_ai.usage.input_tokens', u.prompt_tokens);
          if (u.completion_tokens !== undefined)
            s.setAttribute('gen_ai.usage.output_tokens', u.completion_tokens);
        }
      }
      st.usage = true;
      if (st.doneAt !== 0) {
        awaiting.delete(e.requestId);
        end(e.requestId, st);
      }
    }),
    router.on('request:done', (e) => {
      const st = states.get(e.requestId);
      if (st === undefined) return;
      st.span!.setStatus({ code: OK });
      st.done = true;
      if (!st.held) settle(e.requestId, st);
    }),
    router.on('request:exhausted', (e) => {
      pending.delete(e.requestId);
      const st = states.get(e.requestId);
      if (st === undefined) return;
      if (st.recording) {
        st.span!.setAttribute('error.type', e.error.code);
        st.span!.setAttribute('lb.attempts', e.attempts.length);
      }
      st.span!.setStatus({ code: ERROR, message: e.error.message });
      end(e.requestId, st);
    }),
  ];

  let disposed = false;
  return {
    continueFrom(requestId, headers, operation) {
      if (idle()) return;
      pending.set(requestId, {
        parent: headers !== undefined ? extract(headers) : api.context.active(),
        operation,
      });
    },
    inject(requestId, headers, operation) {
      const st = states.get(requestId);
      if (st === undefined || st.span === undefined) return;
      if (st.operation === undefined && operation !== undefined) {
        // In-process callers name the operation here, once its spans have started.
        st.operation = operation;
        const op = OPERATIONS[operation] ?? operation;
        if (st.recording) {
          st.span!.setAttribute('gen_ai.operation.name', op);
          st.span!.updateName(`${op} ${st.requestModel ?? ''}`.trim());
          st.attempt?.setAttribute('gen_ai.operation.name', op);
          st.attempt?.updateName(`${op} ${st.attemptModel ?? ''}`.trim());
        }
      }
      const span = st.attempt ?? st.span;
      if (api.propagation.fields().length > 0) {
        api.propagation.inject(st.attemptCtx ?? api.trace.setSpan(st.parent, span), headers, {
          set: (c, k, v) => {
            c[k] = v;
          },
        });
        return;
      }
      const sc = span.spanContext();
      if (!api.trace.isSpanContextValid(sc)) return;
      headers.traceparent = `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`;
      if (sc.traceState !== undefined) headers.tracestate = sc.traceState.serialize();
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      clearInterval(sweep);
      awaiting.clear();
      for (const off of offs) off();
      for (const [id, st] of states) end(id, st);
      pending.clear();
    },
  };
}
