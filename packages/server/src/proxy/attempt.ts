// One upstream attempt: the endpoint's dialect builds the request, an `UpstreamCall` (the engine's attempt as an
// undici handler) is sent through the transport.
import type { AttemptContext, Endpoint, Usage } from '@lb/core';
import { attemptTimeout, prepareUpstream } from '@lb/exchange';
import { type Dialect, type DialectRequest, openaiDialect } from '@lb/providers';
import { UpstreamCall } from '../upstream.js';
import { clientGone } from './client-signal.js';
import { attemptSettingsOf, transportOf } from './context.js';
import type { Exchange } from './exchange.js';

/** A non-streaming answer the dialect rewrites whole: its chunks, collected. */
export type Translated = { dialect: Dialect; chunks: Uint8Array[]; usage?: Usage } | undefined;

/**
 * One attempt's request in OpenAI's format, for the endpoint's dialect. `json` is parsed only if the dialect reads
 * it (the OpenAI dialect does not when the model needs no mapping: the body goes as it came).
 */
export class Outbound implements DialectRequest {
  constructor(
    readonly exchange: { jsonOf(): Record<string, any> | undefined },
    readonly endpoint: Endpoint,
    readonly operation: string,
    readonly method: string,
    readonly path: string,
    readonly headers: Record<string, string>,
    readonly body: Uint8Array | undefined,
    readonly upstreamModel: string | undefined,
    readonly stream: boolean,
    readonly model: string | undefined,
  ) {}

  get json(): Record<string, any> | undefined {
    return this.exchange.jsonOf();
  }
}

/** The router's attempt callback (`Exchange.attempt`): builds and sends one attempt, resolves with its call. */
export function sendAttempt(x: Exchange, ctx: AttemptContext): Promise<UpstreamCall> {
  const px = x.px;
  const ep = ctx.endpoint;
  x.attempts = ctx.attempt;
  x.ctx = ctx;
  const s = px.settings;
  const stream = x.stream;
  // A provider no dialect is registered for is spoken to as OpenAI-compatible (as it always was).
  const dialect = px.dialect(ep.provider) ?? openaiDialect;
  const dreq = new Outbound(
    x,
    ep,
    x.operation,
    x.req.method ?? 'GET',
    x.path,
    x.fwd!,
    x.body,
    ctx.upstreamModel,
    stream,
    x.model,
  );
  const up = prepareUpstream(dialect, dreq);
  const translator = stream ? dialect.createStreamTranslator?.(dreq) : undefined;
  x.translated = !stream && dialect.translateResponse ? { dialect, chunks: [] } : undefined;
  x.dreq = dreq;
  // The deadline bounds every wait: an attempt's timeout is the smaller of its own and what is left of it.
  const call = new UpstreamCall(
    attemptSettingsOf(px),
    stream,
    stream ? attemptTimeout(s.streamFirstByteTimeoutMs, ctx.deadline) : 0,
    stream ? ctx : undefined,
    ctx.streamProbation,
    translator,
  );
  const legs = x.legs;
  // Hedged: two attempts may run at once; the router's result (not the first to settle) picks the answer.
  if (legs !== undefined) legs.set(call, { ctx, dreq, translated: x.translated });
  else if (!x.continuing) call.early = x;
  x.call = call;
  px.trace?.inject(ctx.requestId, up.headers);
  const signal = ctx.signal;
  if (signal?.aborted) return Promise.reject(signal.reason ?? clientGone());
  // The router's own signal (an attempt timeout) is followed; the client's is the exchange's to act on.
  if (signal !== (x.signal as unknown as AbortSignal)) call.follow(signal);
  try {
    transportOf(px.transport).send(
      {
        origin: up.origin,
        path: up.path,
        method: up.method,
        headers: up.headers,
        body: up.body,
        timeoutMs: stream ? 0 : attemptTimeout(ep.timeoutMs ?? s.timeoutMs, ctx.deadline),
      },
      call,
    );
  } catch (e) {
    return Promise.reject(e);
  }
  return call.promise;
}
