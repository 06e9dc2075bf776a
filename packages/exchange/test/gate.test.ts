import { errorEventStatus, hasErrorEvent as providersHasErrorEvent } from '@lb/providers';
import { describe, expect, it } from 'vitest';
import { gate, hasErrorEvent, quickPass } from '../src/index.js';

const bytes = (s: string) => new TextEncoder().encode(s);

const chunk = (delta: object, extra: object = {}) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;

// [name, SSE text, what the byte-level fast path says]
const cases: [string, string, boolean][] = [
  ['a content delta', chunk({ content: 'Hel' }), true],
  ['a content delta, no space after data:', chunk({ content: 'Hel' }).replace('data: ', 'data:'), true],
  ['a content delta, then more events', chunk({ content: 'Hel' }) + chunk({ content: 'lo' }), true],
  ['content that mentions errors', chunk({ content: 'an error occurred' }), true],
  ['a role-only first event', chunk({ role: 'assistant', content: '' }), false],
  [
    'a role-only event before content',
    chunk({ role: 'assistant', content: '' }) + chunk({ content: 'x' }),
    false,
  ],
  // `"error"` anywhere in the event sends it to the parsing gate (which passes it).
  ['content that is the word "error"', chunk({ content: 'error' }), false],
  [
    'an error object',
    `data: ${JSON.stringify({ error: { message: 'overloaded', type: 'overloaded_error' } })}\n\n`,
    false,
  ],
  ['an error object beside choices', chunk({ content: 'x' }, { error: { message: 'boom' } }), false],
  ['a named error event', `event: error\n${chunk({ content: 'x' })}`, false],
  [
    'a typed (Responses API) event',
    `data: ${JSON.stringify({ type: 'response.output_text.delta', delta: 'x', content: 'y' })}\n\n`,
    false,
  ],
  [
    "Azure's prompt filter results first",
    `data: ${JSON.stringify({ choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] })}\n\n`,
    false,
  ],
  ['CRLF line endings', chunk({ content: 'x' }).replace('\n\n', '\r\n\r\n'), false],
  ['an event cut before its end', chunk({ content: 'Hel' }).slice(0, -2), false],
  [
    'an event split over two data lines',
    'data: {"choices":[{"delta":{"content":"a"}}]}\ndata: {}\n\n',
    false,
  ],
  ['a comment first', `: keep-alive\n\n${chunk({ content: 'x' })}`, false],
  [
    'a tool call delta',
    chunk({ tool_calls: [{ index: 0, id: 't', type: 'function', function: { name: 'f' } }] }),
    false,
  ],
  ['[DONE]', 'data: [DONE]\n\n', false],
];

describe('the stream gate', () => {
  it.each(cases)('quickPass: %s', (_name, text, expected) => {
    expect(quickPass(Buffer.from(text))).toBe(expected);
  });

  it.each(cases)('where quickPass says pass, so does the parsing gate: %s', (_name, text) => {
    const verdict = gate(bytes(text)).kind;
    if (quickPass(Buffer.from(text))) expect(verdict).toBe('pass');
  });

  it('the parsing gate holds role-only and typed preambles, fails error-first streams, passes content', () => {
    expect(gate(bytes(chunk({ role: 'assistant', content: '' }))).kind).toBe('wait');
    expect(gate(bytes(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'x' }))).kind).toBe(
      'pass',
    );
    expect(
      gate(
        bytes(`data: ${JSON.stringify({ error: { message: 'overloaded', type: 'overloaded_error' } })}\n\n`),
      ),
    ).toMatchObject({
      kind: 'error',
      status: 529,
    });
    expect(gate(bytes(chunk({ content: 'x' }).replace('\n\n', '\r\n\r\n'))).kind).toBe('pass');
  });
});

describe('hasErrorEvent', () => {
  it("says what @lb/providers' definition says, on each form and on near misses", () => {
    const samples = [
      chunk({ content: 'an error occurred' }),
      'data: {"error_count":1}\n\n',
      'data: {"error":{"message":"boom"}}\n\n',
      `${chunk({ content: 'Hel' })}data: {"error":{"message":"boom"}}\n\n`,
      'event: error\ndata: {"type":"error","message":"boom"}\n\n',
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"error"}\n\n',
      '',
    ];
    const seen = samples.map((s) => hasErrorEvent(Buffer.from(s)));
    expect(seen).toEqual([false, false, true, true, true, false, false]);
    expect(seen).toEqual(samples.map((s) => providersHasErrorEvent(Buffer.from(s))));
  });
});

describe("error events take their status from @lb/providers' one table", () => {
  const ev = (error: object) => bytes(`data: ${JSON.stringify({ error })}\n\n`);
  it.each([
    [{ message: 'bad key', type: 'authentication_error' }, 401],
    [{ message: 'Incorrect API key', type: 'invalid_request_error', code: 'invalid_api_key' }, 401],
    [{ message: 'slow down', type: 'server_error', code: 'rate_limit_exceeded' }, 429],
    [{ message: 'quota', type: 'insufficient_quota' }, 429],
    [{ message: 'busy', type: 'overloaded_error' }, 529],
    [{ message: 'x', type: 'server_error', status: 503 }, 503],
    [{ message: 'The server is overloaded', type: 'server_error' }, 502],
  ])('%j → %i', (error, status) => {
    expect(gate(ev(error))).toMatchObject({ kind: 'error', status });
    expect(errorEventStatus(error)).toBe(status);
  });
});
