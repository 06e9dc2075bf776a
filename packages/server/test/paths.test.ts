import { describe, expect, it } from 'vitest';
import { BadPath, normalizeTarget } from '../src/paths.js';

const SEGMENTS = ['v1', 'chat', 'x', '.', '..', '%2e', '%2E%2e', '.%2e', ''];

/** Every path of 1 to `depth` segments over `SEGMENTS`. */
function* paths(depth: number, prefix = ''): Generator<string> {
  for (const s of SEGMENTS) {
    const p = `${prefix}/${s}`;
    yield p;
    if (depth > 1) yield* paths(depth - 1, p);
  }
}

describe('normalizeTarget over every path of up to 5 segments', () => {
  it('an accepted path is what a URL parser resolves it to, and keeps its first segment', () => {
    let accepted = 0;
    let refused = 0;
    for (const p of paths(5)) {
      const out = normalizeTarget(p);
      if (out instanceof BadPath) {
        refused++;
        continue;
      }
      accepted++;
      // WHATWG URL resolves `.`/`..` (and `%2e` forms): nothing is left for an upstream to resolve.
      expect(new URL(`http://h${out}`).pathname, p).toBe(out);
      // the first real segment of the input is still the first segment of the output
      const first = p.split('/').find((s, i) => i > 0 && s.replace(/%2e/gi, '.') !== '.');
      if (first !== undefined && first.replace(/%2e/gi, '.') !== '..')
        expect(out.split('/')[1], p).toBe(first);
    }
    expect(accepted).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(1000);
  });

  it('keeps the query as it is, and answers the common path with the same string', () => {
    expect(normalizeTarget('/v1/chat/./completions?a=%2f..')).toBe('/v1/chat/completions?a=%2f..');
    const common = '/v1/chat/completions';
    expect(normalizeTarget(common)).toBe(common);
  });
});
