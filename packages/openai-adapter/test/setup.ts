import type { EndpointConfig } from '@lb/core';
import { type FakeUpstream, type FakeUpstreamOptions, fakeKey, startFakeUpstream } from '@lb/testing';

export interface Pool {
  ups: FakeUpstream[];
  keys: string[];
  endpoints(extra?: Partial<EndpointConfig>[]): EndpointConfig[];
  close(): Promise<void>;
}

/** Starts `n` fake upstreams named a, b, c…, each accepting only its own key. */
export async function startPool(n: number, opts: FakeUpstreamOptions = {}): Promise<Pool> {
  const names = 'abcdefgh'.slice(0, n).split('');
  const keys = names.map((x) => fakeKey(x));
  const ups = await Promise.all(
    names.map((name, i) => startFakeUpstream({ name, acceptKeys: [keys[i]], ...opts })),
  );
  return {
    ups,
    keys,
    endpoints: (extra = []) =>
      ups.map((u, i) => ({ id: u.name, url: u.url, apiKey: keys[i], priority: i + 1, ...extra[i] })),
    close: async () => {
      await Promise.all(ups.map((u) => u.close()));
    },
  };
}

/** The bearer key an upstream request carried. */
export function keyOf(headers: Record<string, string | string[] | undefined>): string {
  return String(headers.authorization ?? '').replace(/^Bearer\s+/i, '') || String(headers['api-key'] ?? '');
}
