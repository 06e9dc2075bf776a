import { createRouter, type Endpoint, type Guard, type RouteRequest, type Router } from '@lb/core';
import { describe, expect, it } from 'vitest';
import { fakeKey } from './misc.js';

/** What the guard contract hands to the hooks that drive a guard. */
export interface GuardContractContext {
  /** The router the guard was attached to: endpoints `a` (priority 1) and `b` (priority 2), each with a key. */
  readonly router: Router;
  /** The guard under test, as it was handed to `router.addGuard`. */
  readonly guard: Guard;
  /** Endpoint `a`, the one the hooks act on. */
  readonly endpoint: Endpoint;
}

export interface GuardContractOptions {
  name: string;
  /**
   * Attaches the guard under test to `router` (it calls `router.addGuard` once, as `attachBreaker` and
   * `attachRateLimit` do). The contract takes the guard from that call. Returning a disposer is optional.
   */
  attach(router: Router): unknown;
  /**
   * Optional: drives the guard until it refuses `endpoint` (open its circuit, spend its budget), e.g. by running failing
   * attempts through `router.execute`. Enables the veto checks.
   */
  refuse?(ctx: GuardContractContext): void | Promise<void>;
  /**
   * Optional: leaves the guard with room for exactly one more request on `endpoint` (one token left, a half-open probe
   * slot free). Enables the same-tick check: of two requests admitted one after the other, only the first passes.
   */
  roomForOne?(ctx: GuardContractContext): void | Promise<void>;
}

const REQUEST: RouteRequest = { model: 'contract-model', requestId: 'contract-1' };

function isThenable(x: unknown): boolean {
  return typeof (x as { then?: unknown } | null)?.then === 'function';
}

/**
 * The contract every guard runs (the breaker, the rate limiter, users' own), hono-router style: `admit` answers
 * synchronously and changes nothing, `acquire` runs in the same tick and returns nothing to wait for, `describe`
 * shows no key, and a veto says why and until when.
 *
 * @example
 * runGuardContract({ name: 'my-guard', attach: (router) => router.addGuard(myGuard()) });
 */
export function runGuardContract(opts: GuardContractOptions): void {
  const setup = async (): Promise<GuardContractContext & { keys: string[]; other: Endpoint }> => {
    const keys = [fakeKey('guard-contract-a'), fakeKey('guard-contract-b')];
    const router = createRouter({
      endpoints: [
        { id: 'a', url: 'http://127.0.0.1:9/v1', apiKey: keys[0] },
        { id: 'b', url: 'http://127.0.0.1:9/v2', apiKey: keys[1], priority: 2 },
      ],
    });
    const guards: Guard[] = [];
    const add = router.addGuard.bind(router);
    // Observes the one call attach() makes (the router's own method does the work), then steps aside.
    Object.defineProperty(router, 'addGuard', {
      configurable: true,
      value: (g: Guard) => {
        guards.push(g);
        return add(g);
      },
    });
    opts.attach(router);
    delete (router as { addGuard?: unknown }).addGuard;
    expect(guards.length, `${opts.name}: attach() must call router.addGuard exactly once`).toBe(1);
    const [endpoint, other] = router.endpoints;
    return { router, guard: guards[0]!, endpoint: endpoint!, other: other!, keys };
  };
  const noKey = (value: unknown, keys: readonly string[]) => {
    const text = JSON.stringify(value) ?? '';
    for (const k of keys) {
      expect(text).not.toContain(k);
      expect(text).not.toContain(k.slice(8, -4)); // the secret middle, whatever the mask keeps
    }
  };
  const checkVeto = (v: unknown, now: number) => {
    expect(v).not.toBe(true);
    const veto = v as { reason: unknown; until?: unknown; rateLimited?: unknown };
    expect(typeof veto.reason).toBe('string');
    expect((veto.reason as string).length).toBeGreaterThan(0);
    if (veto.until !== undefined) {
      expect(typeof veto.until).toBe('number');
      expect(veto.until as number).toBeGreaterThan(now);
    }
    if (veto.rateLimited !== undefined) expect(typeof veto.rateLimited).toBe('boolean');
  };

  describe(`guard contract: ${opts.name}`, () => {
    it('has a non-empty name', async () => {
      const { guard } = await setup();
      expect(typeof guard.name).toBe('string');
      expect(guard.name.length).toBeGreaterThan(0);
    });

    it('admits a fresh endpoint, synchronously', async () => {
      const { guard, endpoint } = await setup();
      const r = guard.admit(endpoint, REQUEST, Date.now());
      expect(isThenable(r)).toBe(false);
      expect(r).toBe(true);
    });

    it('admit is pure: asking again changes neither its answer nor what describe() shows', async () => {
      const { guard, endpoint, other } = await setup();
      const now = Date.now();
      const before = guard.describe?.(endpoint, now);
      const first = guard.admit(endpoint, REQUEST, now);
      for (let i = 0; i < 100; i++) expect(guard.admit(endpoint, REQUEST, now)).toEqual(first);
      guard.admit(other, REQUEST, now);
      expect(guard.describe?.(endpoint, now)).toEqual(before);
    });

    it('a guard that says usesNow: false answers the same when handed now = 0', async () => {
      const { guard, endpoint } = await setup();
      if (guard.usesNow !== false) return;
      expect(guard.admit(endpoint, REQUEST, 0)).toEqual(guard.admit(endpoint, REQUEST, Date.now()));
    });

    it('acquire runs in the same tick: it returns nothing to wait for', async () => {
      const { guard, endpoint } = await setup();
      if (!guard.acquire) return;
      const now = Date.now();
      expect(guard.admit(endpoint, REQUEST, now)).toBe(true);
      expect(guard.acquire(endpoint, REQUEST, now, 'contract-acquire')).toBeUndefined();
    });

    it('describe() is plain data and shows no key', async () => {
      const { guard, endpoint, keys } = await setup();
      if (!guard.describe) return;
      const d = guard.describe(endpoint, Date.now());
      expect(isThenable(d)).toBe(false);
      expect(JSON.parse(JSON.stringify(d))).toEqual(d);
      noKey(d, keys);
    });

    if (opts.refuse) {
      const refuse = opts.refuse;
      it('a veto says why and until when, stays on that endpoint, and shows no key', async () => {
        const ctx = await setup();
        await refuse(ctx);
        const now = Date.now();
        const v = ctx.guard.admit(ctx.endpoint, REQUEST, now);
        checkVeto(v, now);
        noKey(v, ctx.keys);
        expect(ctx.guard.admit(ctx.other, REQUEST, now)).toBe(true);
        if (ctx.guard.describe) noKey(ctx.guard.describe(ctx.endpoint, now), ctx.keys);
      });
    }

    if (opts.roomForOne) {
      const roomForOne = opts.roomForOne;
      it('with room for one, the first request admitted and acquired in a tick leaves none for the next', async () => {
        const ctx = await setup();
        await roomForOne(ctx);
        const now = Date.now();
        expect(ctx.guard.admit(ctx.endpoint, REQUEST, now)).toBe(true);
        ctx.guard.acquire?.(ctx.endpoint, REQUEST, now, 'contract-first');
        checkVeto(ctx.guard.admit(ctx.endpoint, { ...REQUEST, requestId: 'contract-2' }, now), now);
      });
    }
  });
}
