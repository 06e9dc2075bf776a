import type { Usage } from '@lb/core';
import { usageFromBytes } from '@lb/providers/internal';
import { indexOf } from './sse.js';

const PROMPT_TOKENS = new TextEncoder().encode('prompt_tokens"');

/** True when `chunk` holds a `prompt_tokens` key: the chunk of an OpenAI answer (JSON or SSE) that carries usage. */
export function carriesUsage(chunk: Uint8Array): boolean {
  return indexOf(chunk, PROMPT_TOKENS, 0) >= 0;
}

/**
 * The tail of a body, enough to read its token usage at its end (`usageFromBytes` of `@lb/providers`): the last two
 * chunks and, when `watch` (event streams, where `[DONE]` may follow in chunks of its own), the last chunk that
 * carried usage and the one before it. One for both surfaces: what lb-server and the adapter report as
 * `attempt:usage` is read the same way.
 */
export class UsageTail {
  #last: Uint8Array | undefined;
  #prev: Uint8Array | undefined;
  #hit: Uint8Array | undefined;
  #hitPrev: Uint8Array | undefined;
  readonly #watch: boolean;

  constructor(watch: boolean) {
    this.#watch = watch;
  }

  push(chunk: Uint8Array): void {
    if (this.#watch && carriesUsage(chunk)) {
      this.#hit = chunk;
      this.#hitPrev = this.#last;
    }
    this.#prev = this.#last;
    this.#last = chunk;
  }

  usage(): Usage | undefined {
    if (this.#hit !== undefined) return usageFromBytes(this.#hit, this.#hitPrev);
    return this.#last === undefined ? undefined : usageFromBytes(this.#last, this.#prev);
  }
}
