import { describe, expect, it } from 'vitest';
import {
  Attempt,
  type AttemptSettings,
  ExchangeTimeoutError,
  type Timers,
  type Transport,
  type TransportHandler,
  type TransportRequest,
} from '../src/index.js';

const REQ: TransportRequest = {
  origin: 'http://127.0.0.1:1',
  path: '/v1/chat/completions',
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: '{}',
  timeoutMs: 0,
};

/** Timers that record what was armed (and when, relative to the transport's steps) and fire on demand. */
function recordingTimers(log: string[]) {
  const armed: { fn: (arg: any) => void; ms: number; arg: any; cleared: boolean }[] = [];
  const timers: Timers = {
    setTimeout(fn, ms, arg) {
      const t = { fn, ms, arg, cleared: false };
      armed.push(t);
      log.push(`timer ${ms}`);
      return t;
    },
    clearTimeout(t) {
      (t as (typeof armed)[number]).cleared = true;
    },
  };
  return { timers, armed };
}

const settingsWith = (timers: Timers): AttemptSettings => ({
  idleTimeoutMs: 0,
  holdMs: 0,
  budget: undefined,
  timers,
});

/** A transport that reports `onConnect` in `send` (as undici does with an idle connection) or later, by hand. */
function transport(log: string[], connect: 'in-send' | 'later' | 'throws') {
  let handler: TransportHandler | undefined;
  const t: Transport = {
    send(_req, h) {
      log.push('send');
      if (connect === 'throws') throw new TypeError('bad request');
      handler = h;
      // Aborting makes the transport report the reason, as undici and the fetch transport do.
      if (connect === 'in-send') h.onConnect((err) => h.onError(err));
      log.push('written');
    },
  };
  return { t, connect: () => handler!.onConnect((err) => handler!.onError(err)) };
}

describe('Attempt.send: the request leaves before the settle clock starts', () => {
  it.each(['in-send', 'later'] as const)(
    'arms the first-byte timer once, after the write (onConnect %s)',
    (when) => {
      const log: string[] = [];
      const { timers, armed } = recordingTimers(log);
      const call = new Attempt(settingsWith(timers), true, 30_000);
      expect(armed).toHaveLength(0);
      const tr = transport(log, when);
      call.send(tr.t, REQ);
      if (when === 'later') tr.connect();
      expect(log).toEqual(['send', 'written', 'timer 30000']);
      expect(armed).toHaveLength(1);
    },
  );

  it('the armed timer still times the attempt out', async () => {
    const log: string[] = [];
    const { timers, armed } = recordingTimers(log);
    const call = new Attempt(settingsWith(timers), true, 5_000);
    call.send(transport(log, 'in-send').t, REQ);
    armed[0].fn(armed[0].arg);
    const err = await call.promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExchangeTimeoutError);
    expect((err as ExchangeTimeoutError).phase).toBe('first-byte');
    expect((err as ExchangeTimeoutError).timeoutMs).toBe(5_000);
  });

  it('a transport that throws leaves no timer behind', () => {
    const log: string[] = [];
    const { timers, armed } = recordingTimers(log);
    const call = new Attempt(settingsWith(timers), true, 30_000);
    expect(() => call.send(transport(log, 'throws').t, REQ)).toThrow('bad request');
    expect(armed).toHaveLength(0);
  });

  it('an attempt that settled during the send arms nothing', () => {
    const log: string[] = [];
    const { timers, armed } = recordingTimers(log);
    const call = new Attempt(settingsWith(timers), false, 30_000);
    call.promise.catch(() => {});
    const failing: Transport = { send: (_r, h) => h.onError(new Error('connection refused')) };
    call.send(failing, REQ);
    expect(armed).toHaveLength(0);
  });

  it('no settle timeout, no timer', () => {
    const log: string[] = [];
    const { timers, armed } = recordingTimers(log);
    new Attempt(settingsWith(timers), true, 0).send(transport(log, 'in-send').t, REQ);
    expect(armed).toHaveLength(0);
  });

  it('given to a transport directly (not through send), the clock starts at onConnect', () => {
    const log: string[] = [];
    const { timers, armed } = recordingTimers(log);
    const call = new Attempt(settingsWith(timers), true, 30_000);
    const tr = transport(log, 'later');
    tr.t.send(REQ, call);
    expect(armed).toHaveLength(0);
    tr.connect();
    tr.connect();
    expect(armed).toHaveLength(1);
  });
});
