import { describe, expect, it } from 'vitest';
import { askForUsage, costText, dropAskedUsage } from '../src/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const ev = (o: object) => `data: ${JSON.stringify(o)}\n\n`;

describe('askForUsage', () => {
  it('splices the ask into the bytes when the body has no stream_options (nothing else changes)', () => {
    const body = '{"model":"m","stream":true,"messages":[]}';
    const out = askForUsage(enc.encode(body))!;
    expect(dec.decode(out.body)).toBe(
      '{"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[]}',
    );
    expect(out.json).toBeUndefined();
    expect(JSON.parse(dec.decode(askForUsage(enc.encode(' { } '))!.body))).toEqual({
      stream_options: { include_usage: true },
    });
  });

  it("keeps the client's other stream_options and answers undefined when it asked itself", () => {
    const out = askForUsage(enc.encode('{"stream":true,"stream_options":{"include_usage":false,"x":1}}'))!;
    expect(JSON.parse(dec.decode(out.body)).stream_options).toEqual({ include_usage: true, x: 1 });
    expect(out.json?.stream_options).toEqual({ include_usage: true, x: 1 });
    expect(
      askForUsage(enc.encode('{"stream":true,"stream_options":{"include_usage":true}}')),
    ).toBeUndefined();
    expect(askForUsage(enc.encode('[1]'))).toBeUndefined();
    expect(askForUsage(enc.encode('{"stream_options": nope'))).toBeUndefined();
  });

  it('takes what a scan or a parsed body says about stream_options instead of searching the bytes', () => {
    // The name only inside a value: the bytes alone send the body the parsed way; the scan's "no" splices it.
    const body = enc.encode('{"stream":true,"messages":[{"role":"user","content":"stream_options"}]}');
    const searched = askForUsage(body)!;
    expect(searched.json).toBeDefined();
    const told = askForUsage(body, undefined, false)!;
    expect(told.json).toBeUndefined();
    expect(dec.decode(told.body)).toBe(
      '{"stream_options":{"include_usage":true},"stream":true,"messages":[{"role":"user","content":"stream_options"}]}',
    );
    expect(JSON.parse(dec.decode(told.body))).toEqual(JSON.parse(dec.decode(searched.body)));
    // A parsed body without the key is spliced too; told that the key is there, the parsed way keeps its fields.
    expect(askForUsage(body, JSON.parse(dec.decode(body)))!.json).toBeUndefined();
    const asked = askForUsage(enc.encode('{"stream_options":{"x":1}}'), undefined, true)!;
    expect(asked.json?.stream_options).toEqual({ x: 1, include_usage: true });
  });

  it('splices a large body the same way as a small one', () => {
    const text = 'x'.repeat(10_000);
    const out = askForUsage(enc.encode(`{"stream":true,"messages":[{"role":"user","content":"${text}"}]}`))!;
    expect(JSON.parse(dec.decode(out.body))).toEqual({
      stream_options: { include_usage: true },
      stream: true,
      messages: [{ role: 'user', content: text }],
    });
  });
});

describe('dropAskedUsage', () => {
  const content = { id: 'c', choices: [{ index: 0, delta: { content: 'a' } }] };
  const usage = { id: 'c', choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } };

  it('drops the usage event and the usage:null fields, in one chunk of several events', () => {
    const chunk = enc.encode(`${ev({ ...content, usage: null }) + ev(usage)}data: [DONE]\n\n`);
    expect(dec.decode(dropAskedUsage(chunk))).toBe(`${ev(content)}data: [DONE]\n\n`);
    expect(dec.decode(dropAskedUsage(enc.encode(ev(usage))))).toBe('');
  });

  it('passes a chunk with nothing to take out as is (the same bytes, no copy)', () => {
    const chunk = enc.encode(ev(content));
    expect(dropAskedUsage(chunk)).toBe(chunk);
    // Usage inside a content chunk is the provider's own: left alone.
    const own = enc.encode(ev({ ...content, usage: usage.usage }));
    expect(dropAskedUsage(own)).toBe(own);
  });
});

describe('costText', () => {
  it('plain decimals, no exponent, no trailing zeros', () => {
    expect(costText(0.000033)).toBe('0.000033');
    expect(costText(8e-8)).toBe('0.00000008');
    expect(costText(1.5)).toBe('1.5');
    expect(costText(0)).toBe('0');
  });

  it('reads as the regex it replaced did, zeros before the point kept', () => {
    const byRegex = (usd: number) => {
      const t = usd.toFixed(10);
      return t.includes('.') ? t.replace(/\.?0+$/, '') : t;
    };
    for (const usd of [
      10, 100, 1200.5, 0.1, 1e-10, 4e-11, 0.0000000001, 123.456, 1e20, 1e21, 2.5e22, -0.5, -10,
    ])
      expect(costText(usd)).toBe(byRegex(usd));
    expect(costText(100)).toBe('100');
    expect(costText(1e-11)).toBe('0');
  });
});
