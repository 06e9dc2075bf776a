import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeKey } from '@lb/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromEnv, configFromFile } from '../src/index.js';
import { errorOf, lines } from './helpers.js';

const A = fakeKey('a');
const dir = mkdtempSync(join(tmpdir(), 'lb-config-hedge-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hedged requests and stream continuation in the config', () => {
  it('reads LB_HEDGE_AFTER_MS, LB_HEDGE_BUDGET and LB_STREAM_CONTINUE', () => {
    const c = configFromEnv({
      OPENAI_API_KEY: A,
      LB_HEDGE_AFTER_MS: '400',
      LB_HEDGE_BUDGET: '0.2',
      LB_STREAM_CONTINUE: 'true',
    });
    expect(c.hedge).toEqual({ afterMs: 400, budget: 0.2 });
    expect(c.streamContinue).toBe(true);
    const none = configFromEnv({ OPENAI_API_KEY: A });
    expect(none.hedge).toBeUndefined();
    expect(none.streamContinue).toBeUndefined();
  });

  it('refuses a budget outside 0..1 and a delay that is not a number, naming the variable', () => {
    expect(lines(errorOf(() => configFromEnv({ OPENAI_API_KEY: A, LB_HEDGE_BUDGET: '2' })).errors)).toEqual([
      'LB_HEDGE_BUDGET: expected a share from 0 to 1, received 2',
    ]);
    expect(
      lines(errorOf(() => configFromEnv({ OPENAI_API_KEY: A, LB_HEDGE_AFTER_MS: 'soon' })).errors)[0],
    ).toMatch(/^LB_HEDGE_AFTER_MS: /);
  });

  it('reads hedge_after_ms, hedge_after, hedge_budget, hedge_unsafe globally and per model group', () => {
    const file = join(dir, 'lb.toml');
    writeFileSync(
      file,
      `hedge_after = "p95"
hedge_budget = 0.05
stream_continue = true

[[endpoints]]
name = "a"
base_url = "http://127.0.0.1:1/v1"
api_key = "${A}"

[models."gpt-4o"]
hedge_after_ms = 300
hedge_unsafe = true
backends = [{ endpoint = "a" }]
`,
    );
    const c = configFromFile(file, {});
    expect(c.hedge).toEqual({
      after: 'p95',
      budget: 0.05,
      models: { 'gpt-4o': { afterMs: 300, unsafe: true } },
    });
    expect(c.streamContinue).toBe(true);
    writeFileSync(
      file,
      `hedge_after = "fast"\n[[endpoints]]\nname = "a"\nbase_url = "http://x/v1"\napi_key = "${A}"\n`,
    );
    expect(lines(errorOf(() => configFromFile(file, {})).errors)).toEqual([
      'hedge_after: expected a percentile such as "p95"',
    ]);
  });
});
