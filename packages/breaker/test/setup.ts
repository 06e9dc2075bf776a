import { type AttemptContext, createRouter } from '@lb/core';
import { fakeKey } from '@lb/testing';
import { afterEach, beforeEach, vi } from 'vitest';
import {
  attachBreaker,
  type BreakerOptions,
  type BreakerPeers,
  type BreakerStateChange,
} from '../src/index.js';

export type Reply = { status: number; headers?: Record<string, string> };
export type Script = (ctx: AttemptContext) => Promise<Reply>;

export const ok = (): Promise<Reply> => Promise.resolve({ status: 200 });
export const status =
  (s: number, headers?: Record<string, string>): Script =>
  () =>
    Promise.resolve({ status: s, headers });

export function setup(options: BreakerOptions = {}, ids = ['a', 'b']) {
  const router = createRouter({
    endpoints: ids.map((id, i) => ({
      id,
      url: `http://${id}.test/v1`,
      apiKey: fakeKey(id),
      priority: i + 1,
    })),
    maxRetries: 1,
    backoff: { initialMs: 1, maxMs: 1, jitter: 0 },
    maxWaitMs: 0,
  });
  const breaker = attachBreaker(router, { threshold: 3, halfOpenAfterMs: 10_000, env: {}, ...options });
  const changes: BreakerStateChange[] = [];
  breaker.on('state', (c) => changes.push(c));
  const script: Record<string, Script> = Object.fromEntries(ids.map((id) => [id, ok]));
  const calls: string[] = [];
  const run = (req: { signal?: AbortSignal } = {}) =>
    router.execute(req, (ctx) => {
      calls.push(ctx.endpoint.id);
      return script[ctx.endpoint.id](ctx);
    });
  return { router, breaker, changes, script, calls, run };
}

/** Lets cockatiel settle the outcomes it counts (it does so a few microtasks after the attempt). */
export const flush = () => vi.advanceTimersByTimeAsync(0);

/** Fake timers around every test of the file (cockatiel reads `Date.now`). */
export function fakeTimers(): void {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}

/** An in-memory publish/subscribe channel: every message reaches every subscriber (its sender too, as Redis does). */
export function bus() {
  const subs = new Set<(m: string) => void>();
  const sent: string[] = [];
  const peers: BreakerPeers = {
    publish: (m) => {
      sent.push(m);
      for (const s of [...subs]) s(m);
    },
    subscribe: (fn, onSubscribed) => {
      subs.add(fn);
      onSubscribed?.();
      return () => subs.delete(fn);
    },
  };
  return { peers, sent, subs };
}
