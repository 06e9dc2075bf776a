import type { RouterEvents } from '@lb/core';
import { CONTINUE_INSTRUCTION } from '@lb/exchange';
import {
  type Behaviour,
  type FakeAnthropic,
  type FakeUpstream,
  fakeKey,
  type RecordedRequest,
  startFakeAnthropic,
} from '@lb/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { adapter, server, useUpstreams } from './surfaces.js';

// Stream continuation (issue 25, part 4) on both surfaces: lb-server (the `openai` SDK over HTTP) and
// `LoadBalancedOpenAI` in-process.

const pieces = ['The ', 'quick ', 'brown ', 'fox ', 'jumps ', 'over.'];
const prefix = pieces.slice(0, 3).join('');
const rest = pieces.slice(3);

/** `a`'s answer: 3 chunks, then its connection breaks. */
function cutAfterThree(): Behaviour {
  return {
    type: 'custom',
    handle: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const ev = (delta: object) =>
        `data: ${JSON.stringify({ id: 'c-a', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
      res.write(ev({ role: 'assistant', content: '' }));
      for (const p of pieces.slice(0, 3)) res.write(ev({ content: p }));
      // The break comes once the three chunks are out.
      setTimeout(() => res.socket?.destroy(), 30);
    },
  };
}

/** Reads a stream: its text, the chunks' `x_lb` marks, and how it ended. */
async function read(stream: AsyncIterable<any>) {
  let text = '';
  const marks: { at: number; x_lb: unknown }[] = [];
  try {
    for await (const ch of stream) {
      if (ch.x_lb !== undefined) marks.push({ at: text.length, x_lb: ch.x_lb });
      text += ch.choices[0]?.delta?.content ?? '';
    }
    return { text, marks, error: undefined };
  } catch (error) {
    return { text, marks, error: error as Error };
  }
}

describe.each([server, adapter])('stream continuation through $name', (surface) => {
  const up = useUpstreams();
  let a: FakeUpstream;
  let b: FakeUpstream;
  beforeEach(() => {
    a = up.a();
    b = up.b();
  });
  const config = up.config;
  /** `a` sends 3 chunks, then its connection breaks; `b` answers a continuation request with the rest. */
  const script = () => {
    a.setDefault(cutAfterThree());
    b.setDefault((req: RecordedRequest) => {
      const m = req.json?.messages ?? [];
      const cont = m.at(-2)?.role === 'assistant' && m.at(-2)?.content === prefix;
      return { type: 'stream', chunks: cont ? rest : ['wrong'] };
    });
  };

  it('continues a stream cut after 3 chunks with exactly the remaining text, marked and counted', async () => {
    script();
    const on = await surface.start(config(), { streamContinue: true });
    const events: RouterEvents['stream:continued'][] = [];
    on.router.on('stream:continued', (e) => events.push(e));
    const bBefore = b.requests.length;
    const stream = await on.client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say the sentence.' }],
      stream: true,
    });
    const r = await read(stream);
    expect(r.error).toBeUndefined();
    expect(r.text).toBe(pieces.join(''));
    // The first continued chunk, and only it, carries the mark.
    expect(r.marks).toEqual([{ at: prefix.length, x_lb: { continued_from: 'a' } }]);
    // The continuation replayed the conversation with the partial answer as an assistant prefix.
    const sent = b.requests.slice(bBefore);
    expect(sent).toHaveLength(1);
    expect(sent[0].json.messages).toEqual([
      { role: 'user', content: 'Say the sentence.' },
      { role: 'assistant', content: prefix },
      { role: 'user', content: CONTINUE_INSTRUCTION },
    ]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ fromEndpointId: 'a', endpointId: 'b', prefixChars: prefix.length });
    if (on.metrics) expect(await on.metrics()).toMatch(/^lb_stream_continuations_total 1$/m);
  }, 30_000);

  it('breaks as before when continuation is off, or for n > 1', async () => {
    script();
    const off = await surface.start(config(), { streamContinue: false });
    const bBefore = b.requests.length;
    const r = await read(
      await off.client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Say the sentence.' }],
        stream: true,
      }),
    );
    expect(r.text).toBe(prefix);
    expect(r.error).toBeDefined();
    const on = await surface.start(config(), { streamContinue: true });
    const r2 = await read(
      await on.client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Say the sentence.' }],
        stream: true,
        n: 2,
      }),
    );
    expect(r2.text).toBe(prefix);
    expect(r2.error).toBeDefined();
    expect(b.requests.length).toBe(bBefore);
  }, 30_000);

  it('does not continue a tool-call stream', async () => {
    a.setDefault({
      type: 'custom',
      handle: (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const ev = (delta: object) =>
          `data: ${JSON.stringify({ id: 'c-a', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
        res.write(ev({ role: 'assistant', content: 'Let me look. ' }));
        res.write(
          ev({
            tool_calls: [
              { index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } },
            ],
          }),
        );
        setTimeout(() => res.socket?.destroy(), 30);
      },
    });
    const on = await surface.start(config(), { streamContinue: true });
    const bBefore = b.requests.length;
    const r = await read(
      await on.client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Look it up.' }],
        stream: true,
      }),
    );
    expect(r.text).toBe('Let me look. ');
    expect(r.error).toBeDefined();
    expect(b.requests.length).toBe(bBefore);
  }, 30_000);
});

describe.each([server, adapter])('stream continuation on an Anthropic endpoint through $name', (surface) => {
  const up = useUpstreams();
  const key = fakeKey('anthropic');
  let anthropic: FakeAnthropic;
  beforeAll(async () => {
    anthropic = await startFakeAnthropic({ acceptKeys: [key] });
  });
  afterAll(async () => {
    await anthropic.close();
  });

  it('continues with the partial answer as a prefill, and no instruction', async () => {
    up.a().setDefault(cutAfterThree());
    const { client } = await surface.start(
      {
        endpoints: [
          { id: 'a', url: up.a().url, apiKey: up.config().endpoints[0].apiKey, priority: 1 },
          { id: 'claude', url: anthropic.url, apiKey: key, provider: 'anthropic', priority: 2 },
        ],
        strategy: 'priority',
        outlierEjection: false,
      },
      { streamContinue: true },
    );
    // The prefill goes without its trailing space (Anthropic refuses one); the model answers with it.
    anthropic.next({ type: 'ok', chunks: [' fox ', 'jumps ', 'over.'] });
    const r = await read(
      await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Say the sentence.' }],
        stream: true,
      }),
    );
    expect(r.error).toBeUndefined();
    expect(r.text).toBe(pieces.join(''));
    expect(r.marks).toEqual([{ at: prefix.length, x_lb: { continued_from: 'a' } }]);
    const sent = anthropic.requests.at(-1)!.json;
    const last = sent.messages.at(-1);
    expect(last.role).toBe('assistant');
    const prefill = typeof last.content === 'string' ? last.content : last.content[0].text;
    expect(prefill).toBe('The quick brown');
    expect(JSON.stringify(sent.messages)).not.toContain('cut off');
  }, 30_000);
});
