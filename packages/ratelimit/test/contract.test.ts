import { runGuardContract } from '@lb/testing';
import { attachRateLimit } from '../src/index.js';

const ok = async () => ({ status: 200, headers: {} });

// Endpoint `a` may send one request a second (its burst is one), `b` has no budget at all.
runGuardContract({
  name: 'rate limiter',
  attach: (router) =>
    attachRateLimit(router, { limits: (ep) => (ep.id === 'a' ? { rps: 1, burst: 1 } : undefined) }),
  refuse: async ({ router, endpoint }) => {
    await router.execute({ maxRetries: 0 }, async (ctx) => {
      if (ctx.endpoint !== endpoint) throw new Error(`expected endpoint a, got ${ctx.endpoint.id}`);
      return ok();
    });
  },
  roomForOne: () => {}, // a fresh budget of burst 1 has room for exactly one
});
