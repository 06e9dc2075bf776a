// The client's side of a request's cancellation, as the router reads it.

export function clientGone(): Error {
  const e = new Error('client closed the connection');
  e.name = 'AbortError';
  return e;
}

/**
 * The client's side of a request's cancellation, as the router reads it: `aborted`, `reason` and abort listeners.
 * An `AbortController` costs an `EventTarget` (and its bookkeeping) per request; this costs one small object. It is
 * handed to the router only (never to undici or fetch, which want a real `AbortSignal`).
 */
export class ClientSignal {
  aborted = false;
  reason: unknown = undefined;
  onabort: null = null;
  #listeners: Array<() => void> | undefined;

  addEventListener(type: string, fn: () => void): void {
    if (type === 'abort' && !this.aborted) (this.#listeners ??= []).push(fn);
  }

  removeEventListener(type: string, fn: () => void): void {
    const l = this.#listeners;
    if (type !== 'abort' || l === undefined) return;
    const i = l.indexOf(fn);
    if (i >= 0) l.splice(i, 1);
  }

  dispatchEvent(): boolean {
    return false;
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const l = this.#listeners;
    this.#listeners = undefined;
    if (l) for (const fn of l) fn();
  }
}
