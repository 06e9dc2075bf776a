import { describe, expect, it } from 'vitest';
import { scanBody } from '../src/scan.js';

const scan = (s: string) => {
  const f = scanBody(Buffer.from(s));
  return f === undefined ? undefined : { ...f };
};

describe('scanBody', () => {
  it('finds model and stream, and leaves anything unusual to JSON.parse', () => {
    expect(scan('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true}')).toEqual(
      {
        model: 'gpt-4o-mini',
        stream: true,
        featureParams: false,
        completionTokens: 0,
        streamOptions: false,
      },
    );
    expect(scan(' { "stream" : false , "model" : "o3" } ')).toEqual({
      model: 'o3',
      stream: false,
      featureParams: false,
      completionTokens: 0,
      streamOptions: false,
    });
    expect(scan('{}')).toEqual({
      model: undefined,
      stream: false,
      featureParams: false,
      completionTokens: 0,
      streamOptions: false,
    });
    // A top-level stream_options only: the same name inside a value or a nested object does not count.
    expect(scan('{"stream":true,"stream_options":{"include_usage":false}}')?.streamOptions).toBe(true);
    expect(scan('{"messages":[{"content":"stream_options"}],"x":{"stream_options":1}}')?.streamOptions).toBe(
      false,
    );
    expect(scan('{"model":"a\\u0062c"}')).toBeUndefined(); // escaped model: JSON.parse decides
    expect(scan('{"mod\\u0065l":"x"}')).toBeUndefined(); // an escaped key might spell "model"
    expect(scan('{"model":"x",}')).toBeUndefined();
    expect(scan('[1]')).toBeUndefined();
    expect(scan('{"model":"x"} trailing')).toBeUndefined();
  });

  it('notes a top-level parameter some provider cannot honour (n, logprobs, top_logprobs, modalities, audio)', () => {
    for (const k of ['n', 'logprobs', 'top_logprobs', 'modalities', 'audio'])
      expect(scan(`{"model":"m","${k}":1}`)?.featureParams, k).toBe(true);
    // Only at the top level, and only those names.
    expect(scan('{"model":"m","messages":[{"n":2,"audio":{}}],"no":1,"nn":2}')?.featureParams).toBe(false);
    expect(scan('{"model":"m","metadata":{"logprobs":true}}')?.featureParams).toBe(false);
  });

  it('reads the completion budget as estimateTokens counts it: max_completion_tokens, max_tokens, max_output_tokens, times n', () => {
    // Any number form JSON.parse reads as an integer; anything else, or nested: 0. The shared result object is
    // overwritten whole: a later body without a budget reads 0.
    const cases: [string, number][] = [
      ['{"model":"m","max_tokens":256}', 256],
      ['{"max_tokens":100,"max_completion_tokens":300}', 300],
      ['{"max_output_tokens":50}', 50],
      ['{"max_tokens":100,"n":3}', 300],
      ['{"n":3}', 0],
      ['{"max_tokens":1.5e3}', 1500],
      ['{"max_tokens":1.5}', 0],
      ['{"max_tokens":-1}', 0],
      ['{"max_tokens":"100"}', 0],
      ['{"max_tokens":12345678901}', 0],
      ['{"metadata":{"max_tokens":100}}', 0],
      ['{"model":"m"}', 0],
    ];
    for (const [body, want] of cases) expect(scan(body)?.completionTokens, body).toBe(want);
  });

  it('reads model names from recent bytes without mixing up names of the same length', () => {
    const names = ['gpt-4o-mini', 'gpt-4o-maxi', 'grok-4-fast', 'modèle-ünï', 'gpt-4o-mini'];
    for (let round = 0; round < 3; round++)
      for (const m of names) expect(scan(JSON.stringify({ model: m, stream: false }))?.model).toBe(m);
    // More distinct names than the cache holds, then the first ones again.
    const many = Array.from({ length: 40 }, (_, i) => `model-${String(i).padStart(3, '0')}`);
    for (const m of [...many, ...many.slice(0, 5)]) expect(scan(JSON.stringify({ model: m }))?.model).toBe(m);
  });

  it('keeps its own copy of a model name: a reused body buffer does not change what it returns', () => {
    const body = Buffer.from('{"model":"gpt-4o-mini"}');
    expect(scanBody(body)?.model).toBe('gpt-4o-mini');
    body.write('gpt-4o-maxi', 10); // the same bytes' place, now another name
    expect(scanBody(body)?.model).toBe('gpt-4o-maxi');
    // A body inside a larger pooled buffer, at an offset.
    const pool = Buffer.alloc(256, 0x20);
    const at = 100;
    pool.write('{"model":"gpt-4o-mini","stream":true}', at);
    const view = pool.subarray(at, at + 37);
    expect({ ...scanBody(view)! }).toEqual({
      model: 'gpt-4o-mini',
      stream: true,
      featureParams: false,
      completionTokens: 0,
      streamOptions: false,
    });
  });
});
