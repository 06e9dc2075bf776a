import { describe, expect, it } from 'vitest';
import { hasErrorEvent, hasUsage } from '../src/index.js';
import { errorEventAt, usageFromBytes } from '../src/internal.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('usageFromBytes', () => {
  it('reads usage from a JSON answer, spaces and key order as they come', () => {
    const body = enc(
      '{"id":"x","choices":[],"usage":{ "completion_tokens" : 3, "prompt_tokens":\n 9, "total_tokens":12, "prompt_tokens_details":{"cached_tokens":0}}}',
    );
    expect(usageFromBytes(body)).toEqual({ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });
    expect(hasUsage(body)).toBe(true);
  });

  it('reads the last usage of an SSE stream, and one split across two chunks', () => {
    const events =
      'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n' +
      'data: {"choices":[],"usage":{"prompt_tokens":17,"completion_tokens":5,"total_tokens":22}}\n\ndata: [DONE]\n\n';
    expect(usageFromBytes(enc(events))).toEqual({
      prompt_tokens: 17,
      completion_tokens: 5,
      total_tokens: 22,
    });
    const cut = events.indexOf('"prompt_tokens"') + 4;
    const prev = enc(events.slice(0, cut));
    const last = enc(events.slice(cut));
    expect(hasUsage(last)).toBe(false);
    expect(usageFromBytes(last)).toBeUndefined();
    expect(usageFromBytes(last, prev)).toEqual({ prompt_tokens: 17, completion_tokens: 5, total_tokens: 22 });
  });

  it('is undefined without usage or with a value that is not a number', () => {
    expect(usageFromBytes(enc('{"choices":[]}'))).toBeUndefined();
    expect(usageFromBytes(enc('{"usage":{"prompt_tokens":null}}'))).toBeUndefined();
    expect(usageFromBytes(new Uint8Array(0))).toBeUndefined();
    expect(hasUsage(enc('data: {"choices":[]}\n\n'))).toBe(false);
  });

  it('keeps only the fields present (embeddings: no completion tokens)', () => {
    expect(usageFromBytes(enc('{"data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}'))).toEqual({
      prompt_tokens: 8,
      total_tokens: 8,
    });
  });
});

describe('hasErrorEvent', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  it('finds an OpenAI error event anywhere in a chunk, and nothing else', () => {
    const content = 'data: {"choices":[{"index":0,"delta":{"content":"error"}}]}\n\n';
    expect(hasErrorEvent(enc(content))).toBe(false);
    expect(hasErrorEvent(enc('data: {"error_count":1}\n\n'))).toBe(false);
    expect(hasErrorEvent(enc(`${content}data: {"error":{"message":"boom"}}\n\n`))).toBe(true);
    expect(hasErrorEvent(enc('data: {"error":{"message":"boom"}}\n\n'))).toBe(true);
    expect(hasErrorEvent(enc(''))).toBe(false);
    // The Responses API's form, and where each starts.
    const typed = 'event: error\ndata: {"type":"error","message":"boom"}\n\n';
    expect(errorEventAt(enc(`${content}${typed}`))).toBe(content.length);
    expect(errorEventAt(enc(`${content}data: {"error":{}}\n\n`))).toBe(content.length);
    expect(errorEventAt(enc(content))).toBe(-1);
  });
});
