import { createRouter, type Router, type RouterConfig } from '@lb/core';
import type { FallbackConfig, HedgeConfig } from '@lb/exchange';
import { createOpenAI } from '@lb/openai-adapter';
import { type PriceInput, PriceTable } from '@lb/spend';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createServer } from '../src/index.js';

/** The options a scenario sets on both surfaces (the same names on `createServer` and `LoadBalancedOpenAI`). */
export interface SurfaceOptions {
  hedge?: HedgeConfig;
  streamContinue?: boolean;
  fallbacks?: FallbackConfig;
  /** Prices per model, USD per 1M tokens: lb-server's `spend.prices`, the adapter's `cost` over a `PriceTable`. */
  prices?: Record<string, PriceInput>;
}

export interface Started {
  client: OpenAI;
  router: Router;
  /** lb-server only: its base URL. */
  base?: string;
  /** lb-server only: its `/metrics` text. */
  metrics?: () => Promise<string>;
  /** lb-server only: reloads it with a whole config (router, server settings, options). */
  reload?: (router: RouterConfig, options?: SurfaceOptions) => Promise<unknown>;
}

/** One of the two surfaces on the exchange engine: lb-server over HTTP, or `LoadBalancedOpenAI` in-process. */
export interface Surface {
  readonly name: string;
  start(router: RouterConfig, options?: SurfaceOptions): Promise<Started>;
}

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

/** Runs `close` after the current test (a server a test started itself). */
export function closeAfterTest(close: () => Promise<unknown>): void {
  closers.push(close);
}

export const server: Surface = {
  name: 'lb-server',
  async start(router, { prices, ...options } = {}) {
    const s = createServer({
      router,
      ...options,
      ...(prices ? { spend: { prices } } : {}),
      breaker: { enabled: false },
      logDestination: { write: () => true } as never,
      server: { port: 0 },
    });
    const base = await s.listen();
    closers.push(async () => {
      await s.close(100);
    });
    return {
      client: new OpenAI({ baseURL: `${base}/v1`, apiKey: 'client-key', maxRetries: 0 }),
      router: s.router,
      base,
      metrics: async () => (await fetch(`${base}/metrics`)).text(),
      reload: (r, o = {}) => s.reload({ router: r, server: { port: 0 }, ...o }),
    };
  },
};

export const adapter: Surface = {
  name: 'LoadBalancedOpenAI',
  async start(config, { prices, ...options } = {}) {
    const router = createRouter(config);
    const table = prices ? new PriceTable({ prices }) : undefined;
    const cost = table ? { cost: table.costOf.bind(table) } : {};
    return { client: createOpenAI(router, { ...options, ...cost }), router };
  },
};

/**
 * Two fake upstreams for a `describe` block (`a` priority 1, `b` priority 2; defaults reset after each test), and
 * the router config over them.
 */
export function useUpstreams(): { a: () => FakeUpstream; b: () => FakeUpstream; config: () => RouterConfig } {
  const keys = { a: fakeKey('alpha'), b: fakeKey('bravo') };
  let a: FakeUpstream;
  let b: FakeUpstream;
  beforeAll(async () => {
    [a, b] = await Promise.all([
      startFakeUpstream({ name: 'a', acceptKeys: [keys.a] }),
      startFakeUpstream({ name: 'b', acceptKeys: [keys.b] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  afterEach(() => {
    a.setDefault({ type: 'ok' });
    b.setDefault({ type: 'ok' });
  });
  return {
    a: () => a,
    b: () => b,
    config: () => ({
      endpoints: [
        { id: 'a', url: a.url, apiKey: keys.a, priority: 1 },
        { id: 'b', url: b.url, apiKey: keys.b, priority: 2 },
      ],
      strategy: 'priority',
      outlierEjection: false,
    }),
  };
}
