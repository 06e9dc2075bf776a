import { describe, expect, it } from 'vitest';
import { EventFramer } from '../src/index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

describe('EventFramer', () => {
  it('passes a chunk of whole events as it is, and keeps an unfinished event for the next chunk', () => {
    const f = new EventFramer();
    const whole = enc('data: a\n\ndata: b\n\n');
    expect(f.push(whole)).toBe(whole);
    expect(dec(f.push(enc('data: c\n\nda')))).toBe('data: c\n\n');
    expect(f.pending).toBe(2);
    expect(dec(f.push(enc('ta: d\n')))).toBeUndefined();
    expect(dec(f.push(enc('\ndata: e')))).toBe('data: d\n\n');
    expect(dec(f.rest())).toBe('data: e');
    expect(f.rest()).toBeUndefined();
  });

  it('finds a blank line split across chunks, LF and CRLF alike', () => {
    const f = new EventFramer();
    expect(f.push(enc('data: a\n'))).toBeUndefined();
    expect(dec(f.push(enc('\n')))).toBe('data: a\n\n');
    expect(f.push(enc('data: b\r\n\r'))).toBeUndefined();
    expect(dec(f.push(enc('\ndata: c')))).toBe('data: b\r\n\r\n');
    expect(f.push(enc('\r'))).toBeUndefined();
    expect(f.push(enc('\n'))).toBeUndefined();
    expect(dec(f.push(enc('\r\n')))).toBe('data: c\r\n\r\n');
  });

  it('scans each byte once: an endless line costs its length, not its length squared', () => {
    const f = new EventFramer(64 * 1024 * 1024);
    const piece = enc('x'.repeat(1000));
    for (let i = 0; i < 5000; i++) expect(f.push(piece)).toBeUndefined();
    expect(f.scanned).toBe(5000 * 1000);
    expect(f.pending).toBe(5000 * 1000);
    // Its end comes: one event of 5 MB and its blank line, in one piece.
    const out = f.push(enc('\n\n'));
    expect(out?.length).toBe(5000 * 1000 + 2);
  });

  it('an event past the limit sets overflow and keeps nothing', () => {
    const f = new EventFramer(10_000);
    const piece = enc('y'.repeat(4096));
    f.push(piece);
    f.push(piece);
    expect(f.overflow).toBe(false);
    f.push(piece);
    expect(f.overflow).toBe(true);
    expect(f.pending).toBe(0);
    expect(f.push(enc('\n\n'))).toBeUndefined();
  });
});
