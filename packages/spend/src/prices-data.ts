import type { PriceInput } from './prices.js';

/**
 * The date the shipped prices were taken (list prices, USD, standard tier: no batch, flex or priority rates, no
 * long-context tiers).
 *
 * Source: LiteLLM's maintained table `model_prices_and_context_window.json` (github.com/BerriAI/litellm, stored commit
 * 00035b69f416be24e2e323c13198d9b7d2d1bdf9, read on this date), which follows the providers' price lists
 * (openai.com/api/pricing, anthropic.com/pricing; Azure OpenAI global deployments bill the same per model). Read
 * there: the GPT-4o, GPT-5 (5, 5.1, 5.2, 5.3, 5.4, 5.5, 5.6, mini, nano, pro, chat, codex), gpt-image-1 and Claude
 * entries. The others (GPT-4.1, the o-series, older chat models, embeddings, DALL·E, Whisper, TTS, Claude 3.5) are the
 * providers' list prices as published on that date, not re-read there. Figures only; no code was taken. Override any
 * of them in config (`[prices."model"]`) or per endpoint (`price = { … }`).
 */
export const PRICES_DATE = '2026-12-07';

/**
 * USD per 1M tokens (`input`, `cachedInput` = cache reads, `cacheWrite` = Anthropic's cache creation, `output`);
 * per unit where a model is priced so (`image` per image at the standard size, `audioMinute` per minute of audio in,
 * `characters` per 1M characters of speech out). Dated snapshots (`gpt-4o-mini-2024-07-18`,
 * `claude-3-5-sonnet-20241022`) resolve to their base name unless listed here with a price of their own.
 */
export const DEFAULT_PRICES: Readonly<Record<string, PriceInput>> = {
  // OpenAI: GPT-5 family
  'gpt-5.6': { input: 5, cachedInput: 0.5, output: 30 },
  'gpt-5.6-sol': { input: 5, cachedInput: 0.5, output: 30 },
  'gpt-5.6-terra': { input: 2.5, cachedInput: 0.25, output: 15 },
  'gpt-5.6-luna': { input: 1, cachedInput: 0.1, output: 6 },
  'gpt-5.5': { input: 5, cachedInput: 0.5, output: 30 },
  'gpt-5.5-pro': { input: 30, cachedInput: 3, output: 180 },
  'gpt-5.4': { input: 2.5, cachedInput: 0.25, output: 15 },
  'gpt-5.4-pro': { input: 30, cachedInput: 3, output: 180 },
  'gpt-5.4-mini': { input: 0.75, cachedInput: 0.075, output: 4.5 },
  'gpt-5.4-nano': { input: 0.2, cachedInput: 0.02, output: 1.25 },
  'gpt-5.3-chat-latest': { input: 1.75, cachedInput: 0.175, output: 14 },
  'gpt-5.3-codex': { input: 1.75, cachedInput: 0.175, output: 14 },
  'gpt-5.2': { input: 1.75, cachedInput: 0.175, output: 14 },
  'gpt-5.2-chat-latest': { input: 1.75, cachedInput: 0.175, output: 14 },
  'gpt-5.2-codex': { input: 1.75, cachedInput: 0.175, output: 14 },
  'gpt-5.2-pro': { input: 21, output: 168 },
  'gpt-5.1': { input: 1.25, cachedInput: 0.125, output: 10 },
  'gpt-5.1-chat-latest': { input: 1.25, cachedInput: 0.125, output: 10 },
  'gpt-5.1-codex': { input: 1.25, cachedInput: 0.125, output: 10 },
  'gpt-5.1-codex-max': { input: 1.25, cachedInput: 0.125, output: 10 },
  'gpt-5.1-codex-mini': { input: 0.25, cachedInput: 0.025, output: 2 },
  'gpt-5': { input: 1.25, cachedInput: 0.125, output: 10 },
  'gpt-5-chat': { input: 1.25, cachedInput: 0.125, output: 10 },
  'gpt-5-chat-latest': { input: 1.25, cachedInput: 0.125, output: 10 },
  'gpt-5-codex': { input: 1.25, cachedInput: 0.125, output: 10 },
  'gpt-5-pro': { input: 15, output: 120 },
  'gpt-5-mini': { input: 0.25, cachedInput: 0.025, output: 2 },
  'gpt-5-nano': { input: 0.05, cachedInput: 0.005, output: 0.4 },
  // OpenAI: GPT-4.1 family
  'gpt-4.1': { input: 2, cachedInput: 0.5, output: 8 },
  'gpt-4.1-mini': { input: 0.4, cachedInput: 0.1, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, cachedInput: 0.025, output: 0.4 },
  // OpenAI: GPT-4o family
  'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10 },
  'gpt-4o-2024-05-13': { input: 5, output: 15 },
  'gpt-4o-mini': { input: 0.15, cachedInput: 0.075, output: 0.6 },
  'chatgpt-4o-latest': { input: 5, output: 15 },
  // OpenAI: reasoning
  o1: { input: 15, cachedInput: 7.5, output: 60 },
  'o1-mini': { input: 1.1, cachedInput: 0.55, output: 4.4 },
  'o1-pro': { input: 150, output: 600 },
  o3: { input: 2, cachedInput: 0.5, output: 8 },
  'o3-mini': { input: 1.1, cachedInput: 0.55, output: 4.4 },
  'o3-pro': { input: 20, output: 80 },
  'o4-mini': { input: 1.1, cachedInput: 0.275, output: 4.4 },
  // OpenAI: older chat models
  'gpt-4-turbo': { input: 10, output: 30 },
  'gpt-4': { input: 30, output: 60 },
  'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
  // Azure OpenAI spells 3.5 without the dot
  'gpt-35-turbo': { input: 0.5, output: 1.5 },
  // OpenAI: embeddings (input only)
  'text-embedding-3-small': { input: 0.02 },
  'text-embedding-3-large': { input: 0.13 },
  'text-embedding-ada-002': { input: 0.1 },
  // OpenAI: images, audio, speech, moderation
  'dall-e-3': { image: 0.04 },
  'dall-e-2': { image: 0.02 },
  'gpt-image-1': { input: 5, cachedInput: 1.25, output: 40 },
  'whisper-1': { audioMinute: 0.006 },
  'gpt-4o-transcribe': { audioMinute: 0.006 },
  'gpt-4o-mini-transcribe': { audioMinute: 0.003 },
  'tts-1': { characters: 15 },
  'tts-1-hd': { characters: 30 },
  'omni-moderation-latest': { input: 0, output: 0 },
  // Anthropic (cache writes at the 5-minute rate)
  'claude-fable-5': { input: 10, cachedInput: 1, cacheWrite: 12.5, output: 50 },
  'claude-sonnet-5': { input: 2, cachedInput: 0.2, cacheWrite: 2.5, output: 10 },
  'claude-opus-4-8': { input: 5, cachedInput: 0.5, cacheWrite: 6.25, output: 25 },
  'claude-opus-4-7': { input: 5, cachedInput: 0.5, cacheWrite: 6.25, output: 25 },
  'claude-opus-4-6': { input: 5, cachedInput: 0.5, cacheWrite: 6.25, output: 25 },
  'claude-sonnet-4-6': { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 },
  'claude-opus-4-5': { input: 5, cachedInput: 0.5, cacheWrite: 6.25, output: 25 },
  'claude-opus-4-1': { input: 15, cachedInput: 1.5, cacheWrite: 18.75, output: 75 },
  'claude-opus-4': { input: 15, cachedInput: 1.5, cacheWrite: 18.75, output: 75 },
  'claude-opus-4-0': { input: 15, cachedInput: 1.5, cacheWrite: 18.75, output: 75 },
  'claude-4-opus': { input: 15, cachedInput: 1.5, cacheWrite: 18.75, output: 75 },
  'claude-sonnet-4-5': { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 },
  'claude-sonnet-4': { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 },
  'claude-sonnet-4-0': { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 },
  'claude-4-sonnet': { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 },
  'claude-3-7-sonnet': { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 },
  'claude-3-5-sonnet': { input: 3, cachedInput: 0.3, cacheWrite: 3.75, output: 15 },
  'claude-haiku-4-5': { input: 1, cachedInput: 0.1, cacheWrite: 1.25, output: 5 },
  'claude-3-5-haiku': { input: 0.8, cachedInput: 0.08, cacheWrite: 1, output: 4 },
  'claude-3-opus': { input: 15, cachedInput: 1.5, cacheWrite: 18.75, output: 75 },
  'claude-3-haiku': { input: 0.25, cachedInput: 0.03, cacheWrite: 0.3, output: 1.25 },
};
