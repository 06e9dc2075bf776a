import { ConfigError } from './errors.js';
/** Options of {@link estimateTokens}. */
export interface EstimateOptions {
  /** Characters per token of the heuristic. Default 4 (OpenAI's rule of thumb for English). */
  charsPerToken?: number;
  /**
   * Count the completion budget (`max_tokens`, `max_completion_tokens`, `max_output_tokens`) as OpenAI's TPM limiter
   * does. Default true.
   */
  includeCompletion?: boolean;
  /** Tokens counted per image part. Default 85 (a low-detail image). */
  imageTokens?: number;
}

/**
 * A cheap estimate of the tokens a request will use, from its parsed JSON body (chat `messages`, `prompt`, `input`,
 * `instructions`, tools) plus its completion budget. No tokenizer: characters / 4, plus a few tokens per message.
 * Good enough to stop before a tokens-per-minute limit; the limiter corrects it with the response's `usage`.
 *
 * @example
 * const estimatedTokens = estimateTokens({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 100 });
 * await router.execute({ model: 'gpt-4o', estimatedTokens }, attempt);
 */
export function estimateTokens(body: unknown, options: EstimateOptions = {}): number {
  if (body === null || typeof body !== 'object') return 0;
  const cpt = options.charsPerToken ?? 4;
  if (!(cpt > 0))
    throw new ConfigError(`estimateTokens: charsPerToken must be > 0, received ${JSON.stringify(cpt)}`);
  const img = options.imageTokens ?? 85;
  const b = body as Record<string, unknown>;
  const acc = { chars: 0, extra: 0 };
  const messages = b.messages;
  if (Array.isArray(messages)) {
    acc.extra += 3;
    for (const m of messages) {
      acc.extra += 4;
      if (m && typeof m === 'object') {
        const mm = m as Record<string, unknown>;
        walk(mm.content, acc, img, 0);
        if (typeof mm.name === 'string') acc.chars += mm.name.length;
        if (mm.tool_calls !== undefined) walk(mm.tool_calls, acc, img, 0);
      }
    }
  }
  walk(b.prompt, acc, img, 0);
  walk(b.input, acc, img, 0);
  walk(b.instructions, acc, img, 0);
  walk(b.system, acc, img, 0);
  if (b.tools !== undefined) walk(b.tools, acc, img, 0);
  let total = Math.ceil(acc.chars / cpt) + acc.extra;
  if (options.includeCompletion !== false) {
    const max = b.max_completion_tokens ?? b.max_tokens ?? b.max_output_tokens;
    if (typeof max === 'number' && Number.isFinite(max) && max > 0) {
      const n = typeof b.n === 'number' && b.n > 1 ? b.n : 1;
      total += max * n;
    }
  }
  return total;
}

function walk(v: unknown, acc: { chars: number; extra: number }, img: number, depth: number): void {
  if (v === undefined || v === null || depth > 8) return;
  if (typeof v === 'string') {
    acc.chars += v.length;
    return;
  }
  if (typeof v === 'number') {
    // A token id of a pre-tokenised prompt.
    acc.extra += 1;
    return;
  }
  if (Array.isArray(v)) {
    for (const x of v) walk(x, acc, img, depth + 1);
    return;
  }
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (o.type === 'image_url' || o.type === 'input_image') {
      acc.extra += img;
      return;
    }
    for (const k in o) {
      if (k === 'type' || k === 'role') continue;
      walk(o[k], acc, img, depth + 1);
    }
  }
}
