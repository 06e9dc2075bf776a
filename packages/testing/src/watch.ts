/** One call of a watched object that has answered. */
export interface AnsweredCall {
  method: string;
  args: unknown[];
}

/** What {@link watchCalls} returns. */
export interface Watched<T extends object> {
  /** Stands in for the object: every method call goes through, and answers (promises) are watched. */
  readonly proxy: T;
  /** The calls whose answers came, in the order they came. */
  readonly log: readonly AnsweredCall[];
  /**
   * Resolves once `cond(log)` holds with no call in flight, each answer counted only after the caller's own
   * reactions to it ran (they were registered after ours). A wait on the object's answers, not on time.
   */
  answered(cond: (log: readonly AnsweredCall[]) => boolean): Promise<void>;
}

/**
 * Watches the asynchronous answers of an object (a rate-limit store in front of a real Redis), so a test waits until
 * what it needs has answered instead of sleeping.
 *
 * @example
 * const w = watchCalls(new RedisStore(redis));
 * attachRateLimit(router, { store: w.proxy });
 * await w.answered((log) => log.some((c) => c.method === 'setCooldown'));
 */
export function watchCalls<T extends object>(target: T): Watched<T> {
  const log: AnsweredCall[] = [];
  let inFlight = 0;
  const waiters = new Set<() => void>();
  const proxy = new Proxy(target, {
    get(t, key) {
      const v = Reflect.get(t, key, t);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const r = v.apply(t, args);
        if (r !== null && typeof r === 'object' && typeof r.then === 'function') {
          inFlight++;
          const done = () =>
            setImmediate(() => {
              inFlight--;
              log.push({ method: String(key), args });
              for (const w of [...waiters]) w();
            });
          r.then(done, done);
        }
        return r;
      };
    },
  });
  const answered = (cond: (l: readonly AnsweredCall[]) => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (inFlight > 0 || !cond(log)) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });
  return { proxy, log, answered };
}

/**
 * Requests a rate-limit store has been told of so far, by the calls in `log`: bucket spends (`adjust` by minus the
 * cost, `take`) and window hits (`hit`, `record` of n).
 */
export function spendsSent(log: readonly AnsweredCall[]): number {
  let n = 0;
  for (const c of log) {
    if (c.method === 'adjust') n -= c.args[1] as number;
    else if (c.method === 'take') n += c.args[1] as number;
    else if (c.method === 'hit') n += 1;
    else if (c.method === 'record') n += c.args[3] as number;
  }
  return n;
}
