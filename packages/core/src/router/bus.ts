/**
 * The router's bus: one typed event emitter every observer subscribes to. Producers ask `has(event)` before they
 * build a payload, so an event nobody listens to costs nothing; a throwing subscriber never breaks routing.
 */
import { EventEmitter } from 'eventemitter3';
import type { RouterEventName, RouterEvents } from '../events.js';

export class RouterBus {
  readonly #emitter = new EventEmitter<RouterEvents>();

  on<E extends RouterEventName>(event: E, listener: (payload: RouterEvents[E]) => void): () => void {
    this.#emitter.on(event, listener as never);
    return () => {
      this.#emitter.off(event, listener as never);
    };
  }

  once<E extends RouterEventName>(event: E, listener: (payload: RouterEvents[E]) => void): () => void {
    this.#emitter.once(event, listener as never);
    return () => {
      this.#emitter.off(event, listener as never);
    };
  }

  listenerCount(event: RouterEventName): number {
    return this.#emitter.listenerCount(event);
  }

  /** Someone listens to `event`. */
  has(event: RouterEventName): boolean {
    return this.#emitter.listenerCount(event) > 0;
  }

  emit<E extends RouterEventName>(event: E, payload: RouterEvents[E]): void {
    try {
      this.#emitter.emit(event, ...([payload] as never));
    } catch {
      // A throwing subscriber must not break routing.
    }
  }
}
