import * as api from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

export type { ReadableSpan };
export { api };

/**
 * Registers a global tracer provider whose spans go to an in-memory exporter (the OTel SDK's own). `finished(pred)`
 * waits for a finished span that matches; `close()` unregisters everything it set.
 */
export function inMemoryTracing(): {
  exporter: InMemorySpanExporter;
  finished(pred: (s: ReadableSpan) => boolean): Promise<ReadableSpan>;
  spans(pred?: (s: ReadableSpan) => boolean): ReadableSpan[];
  close(): void;
} {
  const exporter = new InMemorySpanExporter();
  api.trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  return {
    exporter,
    spans: (pred) => (pred ? exporter.getFinishedSpans().filter(pred) : exporter.getFinishedSpans()),
    finished: (pred) =>
      new Promise((resolve) => {
        const check = () => {
          const s = exporter.getFinishedSpans().find(pred);
          if (s) resolve(s);
          else setImmediate(check);
        };
        check();
      }),
    close() {
      api.trace.disable();
      api.context.disable();
      api.propagation.disable();
    },
  };
}
