import { Endpoint } from '@lb/core';
import { describe, expect, it } from 'vitest';
import { costOf, PRICES_DATE, PriceTable, tokensOf, toPrice } from '../src/index.js';

describe('costOf', () => {
  it('prices an OpenAI chat completion from prompt and completion tokens', () => {
    // gpt-4o-mini: $0.15 in, $0.60 out per 1M
    expect(
      costOf({ prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 }, 'gpt-4o-mini'),
    ).toBeCloseTo((1000 * 0.15 + 200 * 0.6) / 1e6, 15);
  });

  it('prices cached input at the cached price (cached tokens are part of prompt_tokens)', () => {
    const usage = {
      prompt_tokens: 2000,
      completion_tokens: 100,
      prompt_tokens_details: { cached_tokens: 1536 },
    };
    // gpt-4o: $2.50 in, $1.25 cached, $10 out
    expect(costOf(usage, 'gpt-4o')).toBeCloseTo((464 * 2.5 + 1536 * 1.25 + 100 * 10) / 1e6, 15);
  });

  it('prices the Responses API shape (input_tokens include the cached ones)', () => {
    const usage = { input_tokens: 1000, output_tokens: 50, input_tokens_details: { cached_tokens: 400 } };
    expect(costOf(usage, 'gpt-4.1-mini')).toBeCloseTo((600 * 0.4 + 400 * 0.1 + 50 * 1.6) / 1e6, 15);
  });

  it('prices embeddings from prompt tokens alone', () => {
    expect(costOf({ prompt_tokens: 5000, total_tokens: 5000 }, 'text-embedding-3-small')).toBeCloseTo(
      (5000 * 0.02) / 1e6,
      15,
    );
  });

  it("prices Anthropic's usage: input_tokens exclude cache reads and writes", () => {
    const usage = {
      input_tokens: 300,
      output_tokens: 120,
      cache_read_input_tokens: 2000,
      cache_creation_input_tokens: 1000,
    };
    // claude-sonnet-4-5: $3 in, $0.30 cache read, $3.75 cache write, $15 out
    expect(costOf(usage, 'claude-sonnet-4-5-20250929')).toBeCloseTo(
      (300 * 3 + 2000 * 0.3 + 1000 * 3.75 + 120 * 15) / 1e6,
      15,
    );
    expect(tokensOf(usage)).toBe(3420);
  });

  it('resolves dated and provider-prefixed names to their base price, but keeps a snapshot priced on its own', () => {
    const u = { prompt_tokens: 1_000_000, completion_tokens: 0 };
    expect(costOf(u, 'gpt-4o-mini-2024-07-18')).toBeCloseTo(0.15, 12);
    expect(costOf(u, 'azure/gpt-4o-mini')).toBeCloseTo(0.15, 12);
    expect(costOf(u, 'claude-3-5-haiku-20241022')).toBeCloseTo(0.8, 12);
    expect(costOf(u, 'claude-3-5-haiku-latest')).toBeCloseTo(0.8, 12);
    // gpt-4o-2024-05-13 has its own (higher) price
    expect(costOf(u, 'gpt-4o-2024-05-13')).toBeCloseTo(5, 12);
    expect(costOf(u, 'gpt-4o-2024-08-06')).toBeCloseTo(2.5, 12);
    expect(costOf(u, 'gpt-5.2-2025-12-11')).toBeCloseTo(1.75, 12);
    expect(costOf(u, 'claude-opus-4-7-20260416')).toBeCloseTo(5, 12);
    expect(costOf(u, 'claude-4-sonnet-20250514')).toBeCloseTo(3, 12);
  });

  it('an unpriced model costs undefined, never 0, and is reported once', () => {
    const unknown: string[] = [];
    const t = new PriceTable({ onUnknown: (m) => unknown.push(m) });
    expect(t.costOf({ prompt_tokens: 10, completion_tokens: 10 }, 'my-llama')).toBeUndefined();
    expect(t.costOf({ prompt_tokens: 10, completion_tokens: 10 }, 'my-llama')).toBeUndefined();
    expect(t.costOf({ prompt_tokens: 10 }, 'other-model')).toBeUndefined();
    expect(unknown).toEqual(['my-llama', 'other-model']);
    expect(t.costOf({ prompt_tokens: 10 }, undefined)).toBeUndefined();
  });

  it('config prices override the shipped ones per model; an endpoint price wins over both', () => {
    const t = new PriceTable({
      prices: { 'gpt-4o-mini': { input: 0.1, output: 0.5 }, 'my-llama': { input: 0 } },
    });
    const u = { prompt_tokens: 1_000_000, completion_tokens: 1_000_000 };
    expect(t.costOf(u, 'gpt-4o-mini')).toBeCloseTo(0.6, 12);
    expect(t.costOf(u, 'gpt-4o-mini-2024-07-18')).toBeCloseTo(0.6, 12);
    expect(t.costOf(u, 'my-llama')).toBe(0);
    const contract = new Endpoint({
      id: 'contract',
      url: 'https://a.example/v1',
      meta: { price: { input: 0.05, output: 0.2 } },
    });
    const list = new Endpoint({ id: 'list', url: 'https://b.example/v1' });
    expect(t.costOf(u, 'gpt-4o-mini', contract)).toBeCloseTo(0.25, 12);
    expect(t.costOf(u, 'gpt-4o-mini', list)).toBeCloseTo(0.6, 12);
    // A self-hosted model with an endpoint price and no model price.
    expect(t.costOf(u, 'unlisted', contract)).toBeCloseTo(0.25, 12);
  });

  it('prices units: images, audio minutes, speech characters', () => {
    const t = new PriceTable();
    expect(t.costOfUnits({ images: 3 }, 'dall-e-3')).toBeCloseTo(0.12, 12);
    expect(t.costOfUnits({ audioSeconds: 90 }, 'whisper-1')).toBeCloseTo(0.009, 12);
    expect(t.costOfUnits({ characters: 1000 }, 'tts-1')).toBeCloseTo(0.015, 12);
    expect(t.costOfUnits({ images: 1 }, 'gpt-4o-mini')).toBeUndefined();
  });

  it('rejects bad prices, naming where', () => {
    expect(() => toPrice({ input: -1 }, 'prices."x"')).toThrow('prices."x".input: expected a number >= 0');
    expect(() => new PriceTable({ prices: { y: { inptu: 1 } as never } })).toThrow(
      'prices."y".inptu: unknown price field',
    );
    const bad = new Endpoint({ id: 'bad', url: 'https://b.example/v1', meta: { price: { output: 'x' } } });
    expect(() => new PriceTable().costOf({}, 'gpt-4o', bad)).toThrow('endpoints.bad.price.output');
  });

  it('ships its date', () => {
    expect(new PriceTable().date).toBe(PRICES_DATE);
    expect(PRICES_DATE).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });
});
