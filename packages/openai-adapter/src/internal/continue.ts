import type { StreamTrail } from '@lb/exchange';

/**
 * Stream continuation for the adapter: the caller reads `first`'s body through `trail` (what it got so far); when
 * it breaks after content and `trail` says it may be continued, `resume(from)` runs the continuation request (kept
 * off the endpoint `from`) and its stream goes on in the same body. When no continuation can be had, the body
 * errors with the original break, as without continuation.
 */
export function continuing(
  first: Response,
  trail: StreamTrail,
  endpointOf: () => string,
  resume: (from: string) => Promise<Response | undefined>,
): Response {
  let reader = first.body!.getReader();
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        for (;;) {
          try {
            const { done, value } = await reader.read();
            if (done) ctl.close();
            else ctl.enqueue(trail.pass(value));
            return;
          } catch (err) {
            if (!trail.canContinue || (err as Error)?.name === 'AbortError') throw err;
            const from = endpointOf();
            trail.begin(from);
            let next: Response | undefined;
            try {
              next = await resume(from);
            } catch {
              next = undefined;
            }
            if (next === undefined || !next.ok || next.body === null) {
              await next?.body?.cancel().catch(() => {});
              throw err;
            }
            reader = next.body.getReader();
          }
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, { status: first.status, statusText: first.statusText, headers: first.headers });
}
