import { createRouter } from '@lb/core';
import { toFile } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOpenAI, type LoadBalancedOpenAI } from '../src/index.js';
import { keyOf, type Pool, startPool } from './setup.js';

let pool: Pool;
let client: LoadBalancedOpenAI;

beforeAll(async () => {
  pool = await startPool(2);
  const router = createRouter({
    endpoints: pool.endpoints([{ modelMap: { 'gpt-3.5-turbo': 'gpt-4' } }, {}]),
    backoff: { initialMs: 1, maxMs: 1 },
    // Every test below fails the first endpoint once on purpose: keep it in rotation however often that happens.
    outlierEjection: false,
  });
  client = createOpenAI(router);
});
afterAll(() => pool.close());
beforeEach(() => {
  for (const u of pool.ups) u.requests.length = 0;
});

/** Makes the first upstream fail once with 500, so every call below also proves failover with its body replayed. */
function failFirst() {
  pool.ups[0].next({ type: 'status', status: 500 });
}

function lastAt(i: number) {
  const r = pool.ups[i].requests;
  return r[r.length - 1];
}

describe('every SDK method goes through the router (first endpoint fails once, the second answers)', () => {
  it('chat.completions.create maps the model and carries the right key to each upstream', async () => {
    failFirst();
    const r = await client.chat.completions.create({
      model: 'gpt-3.5-turbo',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.system_fingerprint).toBe('b');
    // The first upstream saw the mapped name, the second (no map) the exposed one.
    expect(lastAt(0).json.model).toBe('gpt-4');
    expect(lastAt(1).json.model).toBe('gpt-3.5-turbo');
    expect(keyOf(lastAt(0).headers)).toBe(pool.keys[0]);
    expect(keyOf(lastAt(1).headers)).toBe(pool.keys[1]);
    expect(lastAt(1).json.messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('model mapping is visible upstream on the healthy path', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-3.5-turbo',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.system_fingerprint).toBe('a');
    expect(r.model).toBe('gpt-4');
    expect(lastAt(0).json.model).toBe('gpt-4');
    expect(lastAt(0).headers['x-stainless-retry-count']).toBe('0');
  });

  it('completions.create', async () => {
    failFirst();
    const r = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say' });
    expect(r.system_fingerprint).toBe('b');
    expect(lastAt(1).json.prompt).toBe('Say');
  });

  it('embeddings.create', async () => {
    failFirst();
    const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    expect(r.data).toHaveLength(2);
    expect(pool.ups[1].count('/embeddings')).toBe(1);
  });

  it('images.generate', async () => {
    failFirst();
    const r = await client.images.generate({ model: 'gpt-image-1', prompt: 'a cat' });
    expect(r.data?.[0]?.url).toBe('https://images.example/b.png');
  });

  it('audio.speech returns the binary body', async () => {
    failFirst();
    const res = await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'hello' });
    expect(Buffer.from(await res.arrayBuffer()).toString()).toBe('ID3-fake-mp3-from-b');
  });

  it('audio.transcriptions (multipart) is replayed byte for byte on failover', async () => {
    failFirst();
    const file = await toFile(Buffer.from('RIFF-fake-wav-data'), 'speech.wav', { type: 'audio/wav' });
    const r = await client.audio.transcriptions.create({ model: 'whisper-1', file });
    expect(r.text).toBe('b heard speech.wav');
    const a = lastAt(0);
    const b = lastAt(1);
    expect(String(b.headers['content-type'])).toMatch(/^multipart\/form-data; boundary=/);
    expect(b.headers['content-type']).toBe(a.headers['content-type']);
    expect(b.raw.equals(a.raw)).toBe(true);
    expect(b.raw.toString('latin1')).toContain('RIFF-fake-wav-data');
  });

  it('audio.translations (multipart)', async () => {
    const file = await toFile(Buffer.from('fake'), 'fr.mp3', { type: 'audio/mpeg' });
    const r = await client.audio.translations.create({ model: 'whisper-1', file });
    expect(r.text).toBe('a heard fr.mp3');
  });

  it('moderations.create', async () => {
    failFirst();
    const r = await client.moderations.create({ input: 'fine' });
    expect(r.results[0].flagged).toBe(false);
    expect(pool.ups[1].count('/moderations')).toBe(1);
  });

  it('responses.create', async () => {
    failFirst();
    const r = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi' });
    expect(r.output_text).toBe('Hello from b');
  });

  it('models.list and models.retrieve', async () => {
    failFirst();
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toContain('gpt-4o');
    expect(page.data[0].owned_by).toBe('b');
    const m = await client.models.retrieve('gpt-4o');
    expect(m).toMatchObject({ id: 'gpt-4o', owned_by: 'a' });
  });

  it('files.list and files.create (multipart)', async () => {
    const list = await client.files.list();
    expect(list.data).toEqual([]);
    failFirst();
    const f = await client.files.create({
      file: await toFile(Buffer.from('{"a":1}\n'), 'batch.jsonl'),
      purpose: 'batch',
    });
    expect(f.object).toBe('file');
    expect(lastAt(1).raw.toString()).toContain('{"a":1}');
  });

  it('any other path is forwarded too (client.post)', async () => {
    const r = await client.post<{ upstream: string; path: string }>('/vector_stores', {
      body: { name: 'x' },
    });
    expect(r).toMatchObject({ upstream: 'a', path: '/vector_stores' });
  });

  it('withOptions keeps the router and its failover', async () => {
    const quiet = client.withOptions({ timeout: 5000, maxRetries: 5 });
    expect(quiet.router).toBe(client.router);
    expect(quiet.maxRetries).toBe(0);
    failFirst();
    const r = await quiet.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(r.system_fingerprint).toBe('b');
  });
});
