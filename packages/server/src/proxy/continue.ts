// Stream continuation on the proxy: a stream that broke after content goes on from another endpoint, into the
// client's open stream (`@lb/exchange`'s `continue.ts` builds the request and trims the overlap).
import { continuationBody, continuationRequest, prefixCut } from '@lb/exchange';
import type { Exchange } from './exchange.js';
import { settleAttempt } from './outcome.js';
import { sinkError } from './respond.js';
import { EXECUTE_OPTIONS } from './route.js';

/**
 * The stream broke after content; the conversation goes to another endpoint with the partial answer as an
 * assistant prefix, and its stream continues the client's. When that fails, the client's stream ends with the
 * original break.
 */
export async function continueStream(x: Exchange, err: Error): Promise<void> {
  const px = x.px;
  const trail = x.trail!;
  const broken = x.call!;
  const from = x.ctx!.endpoint.id;
  // The break counts for its endpoint as any break does (stream probation).
  settleAttempt(broken, err);
  const json = x.jsonOf()!;
  const prefix = trail.text;
  trail.begin(from);
  x.continuing = true;
  try {
    const call = await px.router.execute(
      continuationRequest(px.router, x.routeReq!, from),
      (ctx) => {
        const body = continuationBody(json, prefix, ctx.endpoint.provider);
        trail.skip = prefixCut(prefix, ctx.endpoint.provider);
        x.json = body;
        x.lazyJson = false;
        x.body = Buffer.from(JSON.stringify(body));
        return x.attempt(ctx);
      },
      EXECUTE_OPTIONS,
    );
    if (call.status >= 300 || !call.isStream) {
      call.dump();
      throw err;
    }
    px.router.publishContinue({
      requestId: x.requestId,
      model: x.fallbackTo ?? x.model,
      fromEndpointId: from,
      endpointId: x.ctx!.endpoint.id,
      prefixChars: prefix.length,
    });
    x.call = call;
    call.attach(x);
  } catch {
    trail.ok = false;
    sinkError(x, err);
  }
}
