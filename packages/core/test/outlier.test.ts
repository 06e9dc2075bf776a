import { type FakeUpstream, startFakeUpstream } from '@lb/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, createRouter, type Guard, OUTLIER_DEFAULTS, type RouterConfig } from '../src/index.js';

/** The README's `@lb/core` snippet, as copied: the platform's fetch, no breaker attached. */
function readmeRequest(router: ReturnType<typeof createRouter>) {
  return router.execute({ model: 'gpt-4o-mini' }, ({ endpoint, upstreamModel, signal }) =>
    fetch(`${endpoint.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${endpoint.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: upstreamModel, messages: [{ role: 'user', content: 'hi' }] }),
      signal,
    }),
  );
}

describe('outlier ejection (on by default)', () => {
  let dead: FakeUpstream;
  let live: FakeUpstream;
  beforeAll(async () => {
    dead = await startFakeUpstream({ name: 'dead', defaultBehaviour: { type: 'status', status: 500 } });
    live = await startFakeUpstream({ name: 'live' });
  });
  afterAll(async () => {
    await dead.close();
    await live.close();
  });
  const endpoints = () => [
    { id: 'primary', url: dead.url, apiKey: 'sk-proj-outlier-primary-0000N0IA' },
    { id: 'backup', url: live.url, apiKey: 'sk-proj-outlier-backup-1111N0IA', priority: 2 },
  ];

  it('the README snippet as copied sends a dead endpoint 5 of 20 requests, then ejects it', async () => {
    const before = dead.count('/chat/completions');
    const router = createRouter({ endpoints: endpoints() });
    for (let i = 0; i < 20; i++) expect((await readmeRequest(router)).status).toBe(200);
    expect(dead.count('/chat/completions') - before).toBe(OUTLIER_DEFAULTS.consecutiveFailures);
    const health = router.getHealth('primary');
    expect(health?.status).toBe('unhealthy');
    expect(health && 'reason' in health ? health.reason : '').toBe(
      'outlier: 5 consecutive failures, ejected for 30 s',
    );
    expect(router.snapshot().endpoints[0].available).toBe(false);
  });

  it('`outlierEjection: false` turns it off: the dead endpoint gets every request', async () => {
    const before = dead.count('/chat/completions');
    const router = createRouter({ endpoints: endpoints(), outlierEjection: false });
    for (let i = 0; i < 20; i++) expect((await readmeRequest(router)).status).toBe(200);
    expect(dead.count('/chat/completions') - before).toBe(20);
    expect(router.getHealth('primary')?.status).toBe('healthy');
  });
});

describe('outlier ejection: timing, doubling, limits', () => {
  /** A router whose attempts answer with the status set per endpoint; the clock is in the test's hand. */
  function setup(extra: Partial<RouterConfig> = {}, ids = ['a', 'b']) {
    const clock = { t: 1_000_000 };
    const status: Record<string, number> = Object.fromEntries(ids.map((id) => [id, 200]));
    const router = createRouter({
      endpoints: ids.map((id, i) => ({ id, url: `http://127.0.0.1:1/${id}`, priority: i + 1 })),
      maxRetries: 0,
      now: () => clock.t,
      ...extra,
    });
    const send = () =>
      router
        .execute({}, ({ endpoint }) => Promise.resolve({ status: status[endpoint.id] }))
        .then(
          () => 'ok',
          () => 'failed',
        );
    return { router, clock, status, send };
  }

  it('comes back after the ejection, leaves again for twice as long if it fails at once, resets on a success', async () => {
    const { router, clock, status, send } = setup({
      outlierEjection: { consecutiveFailures: 3, ejectionMs: 1000 },
    });
    status.a = 500;
    for (let i = 0; i < 3; i++) await send();
    expect(router.getHealth('a')).toMatchObject({ status: 'unhealthy', until: clock.t + 1000 });
    expect(router.pick()?.endpoint.id).toBe('b');
    clock.t += 1000;
    expect(router.pick()?.endpoint.id).toBe('a'); // back by itself
    await send(); // fails again: out for 2 s
    expect(router.getHealth('a')).toMatchObject({ status: 'unhealthy', until: clock.t + 2000 });
    clock.t += 2000;
    status.a = 200;
    expect(await send()).toBe('ok'); // a success resets the count and the doubling
    status.a = 500;
    await send();
    await send();
    expect(router.getHealth('a')?.status).toBe('healthy');
    await send();
    expect(router.getHealth('a')).toMatchObject({ status: 'unhealthy', until: clock.t + 1000 });
  });

  it('caps the doubling at maxEjectionMs', async () => {
    const { router, clock, status, send } = setup({
      outlierEjection: { consecutiveFailures: 1, ejectionMs: 1000, maxEjectionMs: 3000 },
    });
    status.a = 500;
    const lengths: number[] = [];
    for (let i = 0; i < 4; i++) {
      await send();
      const h = router.getHealth('a') as { until: number };
      lengths.push(h.until - clock.t);
      clock.t = h.until;
    }
    expect(lengths).toEqual([1000, 2000, 3000, 3000]);
  });

  it('counts only failures a breaker would count: 4xx and 429 do not eject', async () => {
    const { router, status, send } = setup({ outlierEjection: { consecutiveFailures: 2 } });
    status.a = 400;
    for (let i = 0; i < 5; i++) await send();
    expect(router.getHealth('a')?.status).toBe('healthy');
  });

  it('never ejects the last endpoint in rotation', async () => {
    const { router, status, send } = setup({}, ['only']);
    status.only = 500;
    for (let i = 0; i < 10; i++) expect(await send()).toBe('failed');
    expect(router.getHealth('only')?.status).toBe('healthy');
    expect(router.getStats('only')?.consecutiveErrors).toBe(10);
  });

  it('steps aside while a guard that ejects by itself (a breaker) is attached', async () => {
    const { router, status, send } = setup();
    const breakerLike: Guard = { name: 'breaker-like', ejects: true, admit: () => true };
    const off = router.addGuard(breakerLike);
    status.a = 500;
    for (let i = 0; i < 6; i++) await send();
    expect(router.getHealth('a')?.status).toBe('healthy');
    off();
    await send();
    expect(router.getHealth('a')?.status).toBe('unhealthy');
  });

  it('follows a reload that turns it off', async () => {
    const { router, status, send } = setup();
    router.reload({ ...router.config, outlierEjection: false });
    status.a = 500;
    for (let i = 0; i < 8; i++) await send();
    expect(router.getHealth('a')?.status).toBe('healthy');
  });

  it('rejects bad options with a ConfigError naming the value', () => {
    const endpoints = [{ url: 'http://127.0.0.1:1/v1' }];
    expect(() => createRouter({ endpoints, outlierEjection: { consecutiveFailures: 0 } })).toThrow(
      new ConfigError('config.outlierEjection.consecutiveFailures: expected a number >= 1, received 0'),
    );
    expect(() => createRouter({ endpoints, outlierEjection: { ejectMs: 5 } as never })).toThrow(
      /outlierEjection\.ejectMs: unknown option/,
    );
    expect(() => createRouter({ endpoints, outlierEjection: 'yes' as never })).toThrow(/received "yes"/);
  });
});
