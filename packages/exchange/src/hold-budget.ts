/**
 * The byte budget of the streams one surface holds back while their endpoint is on stream probation, and the end of
 * a probation letting that endpoint's held streams go live together.
 */
import type { Attempt } from './attempt.js';

/** A stream held for probation goes live past this many bytes (a bound on what one held stream keeps in memory). */
export const HOLD_MAX_BYTES = 512 * 1024;

/**
 * The streams one surface (an lb-server, an adapter client) holds for probation. What they keep in memory together
 * is bounded: a stream whose next chunk would take `used` past `max` goes live instead, so that an outage putting
 * many endpoints on probation at once cannot grow the process without bound. When an endpoint's probation ends, its
 * held streams go live together (`release`): the endpoint has just served a stream cleanly.
 */
export class HoldBudget {
  used = 0;
  readonly #calls = new Map<string, Set<Attempt>>();
  readonly #watch: ((release: (endpointId: string) => void) => () => void) | undefined;
  #unwatch: (() => void) | undefined;

  /**
   * `watch`, optional: subscribes to the ends of probations (calling `release` with the endpoint's id) while some
   * stream is held, and returns the unsubscribe (so that nothing listens while nothing is held).
   */
  constructor(
    readonly max: number,
    watch?: (release: (endpointId: string) => void) => () => void,
  ) {
    this.#watch = watch;
  }

  /** @internal An attempt began holding a stream of `endpointId`. */
  add(endpointId: string, call: Attempt): void {
    if (this.#calls.size === 0 && this.#watch !== undefined)
      this.#unwatch = this.#watch((id) => this.release(id));
    let set = this.#calls.get(endpointId);
    if (set === undefined) this.#calls.set(endpointId, (set = new Set()));
    set.add(call);
  }

  /** @internal The attempt stopped holding. */
  delete(endpointId: string, call: Attempt): void {
    const set = this.#calls.get(endpointId);
    if (set?.delete(call) && set.size === 0) {
      this.#calls.delete(endpointId);
      if (this.#calls.size === 0 && this.#unwatch !== undefined) {
        this.#unwatch();
        this.#unwatch = undefined;
      }
    }
  }

  /** The endpoint's probation ended: the streams still held from it go live. */
  release(endpointId: string): void {
    const set = this.#calls.get(endpointId);
    if (set !== undefined) for (const call of [...set]) call.letGo();
  }
}
