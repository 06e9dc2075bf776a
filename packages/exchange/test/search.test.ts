import { describe, expect, it } from 'vitest';
import { indexOf } from '../src/sse.js';

/** The obvious search, byte by byte: what `indexOf` must agree with. */
function naive(hay: Uint8Array, needle: Uint8Array, from: number): number {
  for (let i = from; i + needle.length <= hay.length; i++) {
    let j = 0;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

describe('indexOf (the byte search every stream block goes through)', () => {
  it('agrees with a byte-by-byte search on views into larger buffers, from any offset', () => {
    // A small alphabet makes partial matches common; a fixed LCG keeps the cases the same from run to run.
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let t = 0; t < 20_000; t++) {
      const base = new Uint8Array(40).map(() => 97 + rnd(3));
      const off = rnd(8);
      const hay = base.subarray(off, off + rnd(30));
      const needle = new Uint8Array(1 + rnd(4)).map(() => 97 + rnd(3));
      const from = rnd(35);
      expect(indexOf(hay, needle, from)).toBe(naive(hay, needle, from));
    }
  });

  it('finds an error event and a usage key in real chunks', () => {
    const enc = new TextEncoder();
    const chunk = enc.encode(
      'data: {"choices":[{"delta":{"content":"event: error"}}]}\n\ndata: {"usage":{"prompt_tokens":9}}\n\n',
    );
    expect(indexOf(chunk, enc.encode('prompt_tokens"'), 0)).toBe(
      new TextDecoder().decode(chunk).indexOf('prompt_tokens"'),
    );
    expect(indexOf(chunk, enc.encode('data: {"error"'), 0)).toBe(-1);
  });
});
