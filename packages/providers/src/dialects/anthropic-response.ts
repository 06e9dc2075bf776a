import type { Usage } from '@lb/core';
import { JSON_TOOL } from './anthropic-request.js';

/** Anthropic `stop_reason` → OpenAI `finish_reason`. */
export function finishReason(stop: unknown): string | null {
  switch (stop) {
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    case null:
    case undefined:
      return null;
    default:
      return 'stop';
  }
}

/** Anthropic usage → OpenAI usage (cache reads and writes count as prompt tokens, as OpenAI counts them). */
export function openAIUsage(u: any): Usage & { prompt_tokens_details?: { cached_tokens: number } } {
  const cacheRead = typeof u?.cache_read_input_tokens === 'number' ? u.cache_read_input_tokens : 0;
  const cacheWrite = typeof u?.cache_creation_input_tokens === 'number' ? u.cache_creation_input_tokens : 0;
  const prompt = (typeof u?.input_tokens === 'number' ? u.input_tokens : 0) + cacheRead + cacheWrite;
  const completion = typeof u?.output_tokens === 'number' ? u.output_tokens : 0;
  const out: Usage & { prompt_tokens_details?: { cached_tokens: number } } = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
  if (cacheRead) out.prompt_tokens_details = { cached_tokens: cacheRead };
  return out;
}

/**
 * Anthropic Messages response → OpenAI `chat.completion`. A call to {@link JSON_TOOL} (a `response_format`) becomes
 * the message content.
 */
export function toChatCompletion(msg: any, created: number): Record<string, unknown> {
  let text: string | null = null;
  let json = false;
  const toolCalls: unknown[] = [];
  if (Array.isArray(msg.content)) {
    for (const b of msg.content) {
      if (b?.type === 'text') {
        if (!json) text = text === null ? b.text : text + b.text;
      } else if (b?.type === 'tool_use' && b.name === JSON_TOOL) {
        // The answer to a `response_format`: its JSON is the message (text the model wrote before it is not).
        text = JSON.stringify(b.input ?? {});
        json = true;
      } else if (b?.type === 'tool_use') {
        toolCalls.push({
          id: b.id,
          type: 'function',
          function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
        });
      }
    }
  }
  const message: Record<string, unknown> = { role: 'assistant', content: text, refusal: null };
  if (toolCalls.length) message.tool_calls = toolCalls;
  return {
    id: msg.id,
    object: 'chat.completion',
    created,
    model: msg.model,
    choices: [
      {
        index: 0,
        message,
        logprobs: null,
        finish_reason: json && !toolCalls.length ? 'stop' : (finishReason(msg.stop_reason) ?? 'stop'),
      },
    ],
    usage: openAIUsage(msg.usage),
  };
}

function seconds(iso: unknown, fallback: number): number {
  const t = typeof iso === 'string' ? Date.parse(iso) : Number.NaN;
  return Number.isFinite(t) ? Math.floor(t / 1000) : fallback;
}

/** Anthropic model object → OpenAI model object. */
export function toOpenAIModel(m: any, created: number): Record<string, unknown> {
  return { id: m.id, object: 'model', created: seconds(m.created_at, created), owned_by: 'anthropic' };
}

/** Anthropic model list → OpenAI model list. */
export function toOpenAIModelList(list: any, created: number): Record<string, unknown> {
  const data = Array.isArray(list?.data) ? list.data.map((m: any) => toOpenAIModel(m, created)) : [];
  return { object: 'list', data };
}
