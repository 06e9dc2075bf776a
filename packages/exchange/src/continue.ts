import type { RouteRequest, Router } from '@lb/core';
import { avoiding } from './hedge.js';

/**
 * Stream continuation (opt-in: `stream_continue = true`, `LB_STREAM_CONTINUE=true`): when a chat stream breaks after
 * content reached the client, the conversation is replayed on another endpoint with the partial answer as an
 * assistant prefix, and the continuation is spliced into the same client stream. This module is the part both
 * surfaces share: which requests qualify, what the client got so far, the continuation request, the mark.
 */

/** The instruction an OpenAI-compatible endpoint gets after the partial answer (Anthropic gets a prefill instead). */
export const CONTINUE_INSTRUCTION =
  'Your previous reply was cut off. Continue it exactly from where it stopped: do not repeat any of it, do not ' +
  'comment, start with the next character.';

/** Whether a request may be continued: a streamed chat completion with one choice. Tool-call streams drop out later. */
export function continuable(operation: string, json: Record<string, unknown> | undefined): boolean {
  if (operation !== 'chat.completions' || json === undefined || json.stream !== true) return false;
  if (typeof json.n === 'number' && json.n > 1) return false;
  return Array.isArray(json.messages);
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * What the client got of one continuable stream: its content so far, and whether it can still be continued (no
 * tool call, no second choice, not finished). `pass` reads each block of whole events on its way to the client
 * and, after a continuation began, drops the continuation's role-only preamble and marks its first content chunk
 * with `x_lb: { continued_from }`.
 */
export class StreamTrail {
  text = '';
  /** False once a tool call, a function call, a second choice or a finish reason went by. */
  ok = true;
  /** The endpoint the stream broke on, while its continuation has not sent content yet. */
  #from: string | undefined;
  /** Continuations made (at most one per request). */
  continued = 0;
  /**
   * Whitespace cut from the end of the prefix (Anthropic refuses a prefill ending in whitespace): dropped from the
   * start of the continuation when it comes back, so that the client does not get it twice. Set per attempt.
   */
  skip = '';

  /** True when a break now may be continued. */
  get canContinue(): boolean {
    return this.ok && this.text.length > 0 && this.continued === 0;
  }

  /** A continuation from `fromEndpoint` begins: its first content chunk will be marked. */
  begin(fromEndpoint: string): void {
    this.#from = fromEndpoint;
    this.continued++;
  }

  /** Reads (and, after a continuation began, rewrites) a block of whole SSE events. */
  pass(block: Uint8Array): Uint8Array {
    const s = decoder.decode(block);
    if (this.#from === undefined) {
      this.#observe(s);
      return block;
    }
    let out = '';
    let rewrote = false;
    for (const event of s.split(/\n\n/)) {
      if (event === '') continue;
      const data = dataOf(event);
      let j: any;
      if (data !== undefined && data !== '[DONE]') {
        try {
          j = JSON.parse(data);
        } catch {
          j = undefined;
        }
      }
      if (j !== undefined && this.#from !== undefined) {
        const delta = j.choices?.[0]?.delta;
        const content = typeof delta?.content === 'string' ? delta.content : '';
        if (content === '' && !delta?.tool_calls && !j.choices?.[0]?.finish_reason) {
          // The continuation's preamble (its role): the client has had one.
          rewrote = true;
          continue;
        }
        if (this.skip !== '' && typeof delta?.content === 'string') {
          const c: string = delta.content;
          let k = 0;
          while (k < c.length && k < this.skip.length && c[k] === this.skip[k]) k++;
          delta.content = c.slice(k);
          this.skip = '';
        }
        j.x_lb = { continued_from: this.#from };
        this.#from = undefined;
        out += `data: ${JSON.stringify(j)}\n\n`;
        rewrote = true;
        this.#take(j);
        continue;
      }
      if (j !== undefined) this.#take(j);
      out += `${event}\n\n`;
    }
    return rewrote ? encoder.encode(out) : block;
  }

  #observe(s: string): void {
    if (!this.ok) return;
    for (const event of s.split(/\n\n/)) {
      const data = dataOf(event);
      if (data === undefined || data === '[DONE]') continue;
      try {
        this.#take(JSON.parse(data));
      } catch {
        // not JSON: nothing to learn
      }
    }
  }

  #take(j: any): void {
    const choices = j?.choices;
    if (!Array.isArray(choices)) return;
    for (const c of choices) {
      if (c?.index !== undefined && c.index !== 0) this.ok = false;
      const d = c?.delta;
      if (d?.tool_calls || d?.function_call) this.ok = false;
      if (typeof d?.content === 'string') this.text += d.content;
      if (c?.finish_reason) this.ok = false;
    }
  }
}

function dataOf(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split('\n')) {
    if (line.startsWith('data:')) {
      const v = line.slice(line[5] === ' ' ? 6 : 5);
      data = data === undefined ? v : `${data}\n${v}`;
    }
  }
  return data;
}

/**
 * The continuation request's body for an endpoint of `provider`: the conversation, then the partial answer as an
 * assistant message; Anthropic continues an assistant prefill as is, an OpenAI-compatible endpoint gets
 * {@link CONTINUE_INSTRUCTION} after it.
 */
export function continuationBody(
  json: Record<string, unknown>,
  prefix: string,
  provider: string | undefined,
): Record<string, unknown> {
  // Anthropic refuses a prefill that ends in whitespace: it goes without it (see `StreamTrail.skip`).
  const content = provider === 'anthropic' ? prefix.trimEnd() : prefix;
  const messages = [...(json.messages as unknown[]), { role: 'assistant', content }];
  if (provider !== 'anthropic') messages.push({ role: 'user', content: CONTINUE_INSTRUCTION });
  return { ...json, messages };
}

/** The whitespace {@link continuationBody} cuts from the prefix for `provider` (what `StreamTrail.skip` drops). */
export function prefixCut(prefix: string, provider: string | undefined): string {
  return provider === 'anthropic' ? prefix.slice(prefix.trimEnd().length) : '';
}

/** The continuation's route request: the original one, kept off the endpoint the stream broke on. */
export function continuationRequest(router: Router, req: RouteRequest, fromEndpoint: string): RouteRequest {
  return avoiding(router, { ...req, requestId: `${req.requestId ?? 'req'}.c` }, fromEndpoint);
}
