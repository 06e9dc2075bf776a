import { runGuardContract } from '@lb/testing';
import { attachBreaker, type BreakerHandle } from '../src/index.js';

const failing = async () => ({ status: 500, headers: {} });
let handle: BreakerHandle | undefined;

runGuardContract({
  name: 'breaker',
  attach: (router) => {
    handle = attachBreaker(router, { threshold: 1, halfOpenAfterMs: 60_000, env: {} });
  },
  refuse: async ({ router, endpoint }) => {
    // One failure opens a's circuit (threshold 1); the breaker hears of it on the bus and says so by its event.
    const opened = new Promise<void>((resolve) =>
      handle!.on('state', (c) => {
        if (c.endpointId === endpoint.id && c.to === 'open') resolve();
      }),
    );
    await router.execute({ maxRetries: 0 }, failing).catch(() => {});
    await opened;
  },
});
