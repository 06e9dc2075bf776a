import type { Usage } from '@lb/core';
import type { StreamFailure, StreamTranslator } from '../types.js';
import { anthropicErrorStatus, openAIErrorFromAnthropic } from './anthropic-errors.js';
import { JSON_TOOL } from './anthropic-request.js';
import { finishReason, openAIUsage } from './anthropic-response.js';

const DONE = 'data: [DONE]\n\n';

/**
 * Anthropic Messages SSE → OpenAI `chat.completion.chunk` SSE, event by event:
 * message_start → role chunk; content_block_start (tool_use) → tool call header; content_block_delta (text_delta,
 * input_json_delta) → content / arguments chunks (the input of a call to `JSON_TOOL`, a `response_format` answer, as
 * content); message_delta → finish_reason chunk; message_stop → usage chunk
 * (when `stream_options.include_usage`) and `[DONE]`; error → OpenAI error event, and {@link error} set.
 */
export class AnthropicStreamTranslator implements StreamTranslator {
  #buf = '';
  #head = '';
  #tail = ',"logprobs":null,"finish_reason":null}]}\n\n';
  #id = '';
  #model = '';
  #created: number;
  #includeUsage: boolean;
  /** Anthropic content block index → OpenAI tool call index. */
  #tools = new Map<number, number>();
  /** The content block holding the call to {@link JSON_TOOL} (a `response_format` answer), streamed as content. */
  #answer = -1;
  #input: any;
  #output = 0;
  #done = false;
  error: StreamFailure | undefined = undefined;
  usage: Usage | undefined = undefined;

  constructor(created: number, includeUsage: boolean, model: string | undefined) {
    this.#created = created;
    this.#includeUsage = includeUsage;
    this.#model = model ?? '';
    this.#setHead();
  }

  #setHead(): void {
    this.#head = `data: {"id":${JSON.stringify(this.#id)},"object":"chat.completion.chunk","created":${this.#created},"model":${JSON.stringify(this.#model)},"choices":[{"index":0,"delta":`;
  }

  push(text: string): string {
    if (this.#done) return '';
    this.#buf += text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
    let out = '';
    let at: number;
    while (!this.#done && (at = this.#buf.indexOf('\n\n')) >= 0) {
      const block = this.#buf.slice(0, at);
      this.#buf = this.#buf.slice(at + 2);
      out += this.#event(block);
    }
    return out;
  }

  end(): string {
    if (this.#done || this.#buf.trim() === '') return '';
    const rest = this.#buf;
    this.#buf = '';
    return this.#event(rest);
  }

  #event(block: string): string {
    let data: string | undefined;
    let name: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith('data:')) {
        const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
        data = data === undefined ? v : `${data}\n${v}`;
      } else if (line.startsWith('event:')) name = line.slice(6).trim();
    }
    if (data === undefined) return '';
    let e: any;
    try {
      e = JSON.parse(data);
    } catch {
      if (name === 'error') return this.#fail('api_error', data.slice(0, 500));
      return '';
    }
    switch (e?.type ?? name) {
      case 'message_start': {
        const m = e.message ?? {};
        if (typeof m.id === 'string') this.#id = m.id;
        if (typeof m.model === 'string') this.#model = m.model;
        this.#setHead();
        this.#input = m.usage;
        this.#output = m.usage?.output_tokens ?? 0;
        return `${this.#head}{"role":"assistant","content":""}${this.#tail}`;
      }
      case 'content_block_start': {
        const b = e.content_block;
        if (b?.type === 'tool_use' && b.name === JSON_TOOL) {
          this.#answer = e.index;
          return '';
        }
        if (b?.type === 'tool_use') {
          const index = this.#tools.size;
          this.#tools.set(e.index, index);
          const call = { index, id: b.id, type: 'function', function: { name: b.name, arguments: '' } };
          return `${this.#head}${JSON.stringify({ tool_calls: [call] })}${this.#tail}`;
        }
        if (b?.type === 'text' && b.text)
          return `${this.#head}${JSON.stringify({ content: b.text })}${this.#tail}`;
        return '';
      }
      case 'content_block_delta': {
        const d = e.delta;
        if (d?.type === 'text_delta')
          return `${this.#head}{"content":${JSON.stringify(d.text)}}${this.#tail}`;
        if (d?.type === 'input_json_delta' && e.index === this.#answer) {
          if (!d.partial_json) return '';
          return `${this.#head}{"content":${JSON.stringify(d.partial_json)}}${this.#tail}`;
        }
        if (d?.type === 'input_json_delta') {
          const index = this.#tools.get(e.index);
          if (index === undefined || !d.partial_json) return '';
          return `${this.#head}{"tool_calls":[{"index":${index},"function":{"arguments":${JSON.stringify(d.partial_json)}}}]}${this.#tail}`;
        }
        return '';
      }
      case 'message_delta': {
        const u = e.usage;
        if (u) {
          if (typeof u.output_tokens === 'number') this.#output = u.output_tokens;
          if (typeof u.input_tokens === 'number' || typeof u.cache_read_input_tokens === 'number') {
            this.#input = { ...this.#input, ...u };
          }
        }
        this.usage = openAIUsage({ ...this.#input, output_tokens: this.#output });
        const stop = e.delta?.stop_reason;
        // A `response_format` answer ends in a tool call Anthropic-side, in a plain stop OpenAI-side.
        const reason =
          stop === 'tool_use' && this.#answer >= 0 && this.#tools.size === 0 ? 'stop' : finishReason(stop);
        if (reason === null) return '';
        return `${this.#head}{},"logprobs":null,"finish_reason":"${reason}"}]}\n\n`;
      }
      case 'message_stop': {
        this.#done = true;
        this.usage ??= openAIUsage({ ...this.#input, output_tokens: this.#output });
        if (!this.#includeUsage) return DONE;
        const chunk = {
          id: this.#id,
          object: 'chat.completion.chunk',
          created: this.#created,
          model: this.#model,
          choices: [],
          usage: this.usage,
        };
        return `data: ${JSON.stringify(chunk)}\n\n${DONE}`;
      }
      case 'error': {
        const err = e.error ?? {};
        return this.#fail(String(err.type ?? 'api_error'), String(err.message ?? 'upstream stream error'));
      }
      default:
        return ''; // ping, content_block_stop, future events
    }
  }

  #fail(type: string, message: string): string {
    const status = anthropicErrorStatus(type);
    this.error = { status, type, message };
    this.#done = true;
    return `data: ${JSON.stringify(openAIErrorFromAnthropic(type, message, status))}\n\n`;
  }
}
