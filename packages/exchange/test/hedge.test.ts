import { describe, expect, it } from 'vitest';
import {
  CONTINUE_INSTRUCTION,
  continuable,
  continuationBody,
  HEDGE_MIN_SAMPLES,
  HedgeBudget,
  HedgeRoute,
  hedgeSafe,
  LatencySketch,
  parsePercentile,
  prefixCut,
  StreamTrail,
} from '../src/index.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

describe('hedgeSafe', () => {
  it.each([
    ['chat.completions', 'POST', '/v1/chat/completions', {}, true],
    ['chat.completions', 'POST', '/v1/chat/completions', { store: true }, false],
    ['completions', 'POST', '/v1/completions', {}, true],
    ['embeddings', 'POST', '/v1/embeddings', {}, true],
    ['moderations', 'POST', '/v1/moderations', {}, true],
    ['responses', 'POST', '/v1/responses', { store: false }, true],
    ['responses', 'POST', '/v1/responses', {}, false],
    ['responses', 'POST', '/v1/responses', { store: true }, false],
    ['responses', 'POST', '/v1/responses/resp_1/cancel', { store: false }, false],
    ['files', 'POST', '/v1/files', undefined, false],
    ['batches', 'POST', '/v1/batches', {}, false],
    ['other', 'POST', '/v1/fine_tuning/jobs', {}, false],
    ['images.generations', 'POST', '/v1/images/generations', {}, false],
    ['chat.completions', 'GET', '/v1/chat/completions', undefined, false],
  ])('%s %s %s %j → %s', (op, method, path, json, safe) => {
    expect(hedgeSafe(op, method, path, json as Record<string, unknown> | undefined)).toBe(safe);
  });
});

describe('the budget', () => {
  it('allows hedges up to its share of the sliding minute, and forgets what is older', () => {
    const b = new HedgeBudget(0.1);
    let now = 1_000_000;
    for (let i = 0; i < 9; i++) b.request(now);
    expect(b.take(now)).toBe(false);
    b.request(now);
    expect(b.take(now)).toBe(true);
    expect(b.take(now)).toBe(false);
    for (let i = 0; i < 10; i++) b.request(now);
    expect(b.take(now)).toBe(true);
    // A minute later the window is empty: no requests, no hedges.
    now += 61_000;
    expect(b.take(now)).toBe(false);
    for (let i = 0; i < 10; i++) b.request(now);
    expect(b.take(now)).toBe(true);
  });
});

describe('the latency sketch and the delay', () => {
  it('gives the percentile once it has enough samples; the fixed delay serves until then', () => {
    const r = new HedgeRoute({ after: 'p90', afterMs: 400 });
    expect(r.delay()).toBe(400);
    for (let i = 1; i < HEDGE_MIN_SAMPLES; i++) r.sketch.add(i);
    expect(r.delay()).toBe(400);
    for (let i = HEDGE_MIN_SAMPLES; i <= 100; i++) r.sketch.add(i);
    expect(r.delay()).toBe(91);
    expect(new HedgeRoute({ after: 'p95' }).delay()).toBeUndefined();
  });

  it('keeps the last 256 samples', () => {
    const s = new LatencySketch();
    for (let i = 0; i < 1000; i++) s.add(i < 744 ? 10_000 : 1);
    expect(s.quantile(0.99)).toBe(1);
  });

  it('reads percentiles and refuses anything else', () => {
    expect(parsePercentile('p95')).toBe(0.95);
    expect(parsePercentile('P99.9')).toBeCloseTo(0.999);
    expect(() => parsePercentile('fast')).toThrow(/percentile/);
    expect(() => parsePercentile('p100')).toThrow(/percentile/);
  });
});

describe('stream continuation', () => {
  it('qualifies streamed chat completions with one choice', () => {
    expect(continuable('chat.completions', { stream: true, messages: [] })).toBe(true);
    expect(continuable('chat.completions', { stream: true, messages: [], n: 2 })).toBe(false);
    expect(continuable('chat.completions', { messages: [] })).toBe(false);
    expect(continuable('responses', { stream: true, input: 'x' })).toBe(false);
  });

  it('builds the continuation: a prefill for Anthropic, an instruction after it for others', () => {
    const json = { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] };
    expect(continuationBody(json, 'Hel', 'anthropic').messages).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hel' },
    ]);
    expect(continuationBody(json, 'Hel', 'openai').messages).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hel' },
      { role: 'user', content: CONTINUE_INSTRUCTION },
    ]);
    expect(json.messages).toHaveLength(1);
  });

  it('follows what the client got, drops a tool-call stream, marks the first continued chunk only', () => {
    const t = new StreamTrail();
    t.pass(bytes(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'Hel' })));
    expect(t.text).toBe('Hel');
    expect(t.canContinue).toBe(true);
    t.begin('a');
    expect(t.canContinue).toBe(false);
    const out = text(t.pass(bytes(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'lo' }))));
    expect(out).not.toContain('"role"');
    expect(out).toContain('"x_lb":{"continued_from":"a"}');
    expect(text(t.pass(bytes(chunk({ content: '!' }))))).not.toContain('x_lb');
    expect(t.text).toBe('Hello!');

    // Anthropic's prefill goes without trailing whitespace; the continuation's copy of it is dropped.
    expect(continuationBody({ messages: [] }, 'Hello ', 'anthropic').messages).toEqual([
      { role: 'assistant', content: 'Hello' },
    ]);
    expect(prefixCut('Hello \n', 'anthropic')).toBe(' \n');
    expect(prefixCut('Hello ', 'openai')).toBe('');
    const cut = new StreamTrail();
    cut.pass(bytes(chunk({ content: 'Hello ' })));
    cut.begin('a');
    cut.skip = ' ';
    expect(text(cut.pass(bytes(chunk({ content: ' world' }))))).toContain('"content":"world"');
    expect(cut.text).toBe('Hello world');

    const tools = new StreamTrail();
    tools.pass(
      bytes(
        chunk({ content: 'x' }) + chunk({ tool_calls: [{ index: 0, id: 't', function: { name: 'f' } }] }),
      ),
    );
    expect(tools.canContinue).toBe(false);
    const done = new StreamTrail();
    done.pass(bytes(chunk({ content: 'x' }) + chunk({}, 'stop')));
    expect(done.canContinue).toBe(false);
  });
});
