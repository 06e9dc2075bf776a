import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll } from 'vitest';
import { type CreateServerOptions, createServer, type LbServer } from '../src/index.js';

/** Two fake upstreams and the lb-servers a test file starts in front of them. */
export interface Pair {
  /** Priority 1: the endpoint the tests make misbehave. */
  readonly a: FakeUpstream;
  /** Priority 2: answers "Hello from b". */
  readonly b: FakeUpstream;
  readonly keys: { readonly a: string; readonly b: string };
  /**
   * An lb-server on 127.0.0.1 (a free port) routing to `a` then `b` (strategy priority), with `options` over that, and
   * an `openai` client for it (no SDK retries). `logs` collects its log lines. Closed after the file's tests.
   */
  serve(
    options?: Omit<Partial<CreateServerOptions>, 'router'>,
    logs?: string[],
  ): Promise<{ client: OpenAI; server: LbServer }>;
  /** Closes `server` with the others after the file's tests. */
  track(server: LbServer): LbServer;
}

/** Starts the pair before the calling file's tests and closes it, and every server started on it, after them. */
export function usePair(): Pair {
  const keys = { a: fakeKey('alpha'), b: fakeKey('bravo') };
  const servers: LbServer[] = [];
  let a: FakeUpstream | undefined;
  let b: FakeUpstream | undefined;
  beforeAll(async () => {
    [a, b] = await Promise.all([
      startFakeUpstream({ name: 'a', acceptKeys: [keys.a] }),
      startFakeUpstream({ name: 'b', acceptKeys: [keys.b] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close(100)));
    await Promise.all([a?.close(), b?.close()]);
  });
  const track = (server: LbServer) => {
    servers.push(server);
    return server;
  };
  return {
    get a() {
      return a!;
    },
    get b() {
      return b!;
    },
    keys,
    track,
    async serve(options = {}, logs) {
      const server = track(
        createServer({
          logDestination: { write: (line: string) => logs?.push(line) !== 0 } as any,
          ...options,
          server: { port: 0, ...options.server },
          router: {
            endpoints: [
              { id: 'a', url: a!.url, apiKey: keys.a, priority: 1 },
              { id: 'b', url: b!.url, apiKey: keys.b, priority: 2 },
            ],
            strategy: 'priority',
            // The tests here make `a` misbehave on purpose, with the breaker off: passive ejection would take it out
            // of rotation mid-test.
            outlierEjection: false,
          },
        }),
      );
      const base = await server.listen();
      return { server, client: new OpenAI({ baseURL: `${base}/v1`, apiKey: 'client-key', maxRetries: 0 }) };
    },
  };
}
