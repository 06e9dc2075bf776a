// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${VAR}` references are what these tests are about.
import { fakeKey } from '@lb/testing';
import { describe, expect, it } from 'vitest';
import { configFromEnv, parseConfig } from '../src/index.js';
import { errorOf, lines } from './helpers.js';

const A = fakeKey('a');
const ENDPOINTS = `
[[endpoints]]
name = "a"
base_url = "https://a.example/v1"
api_key = "\${KEY_A}"
`;

describe('[fallbacks] and LB_*FALLBACKS', () => {
  it('reads the three tables exactly as the issue writes them', () => {
    const c = parseConfig(
      `${ENDPOINTS}
[fallbacks]                       # default chain
"gpt-4o" = ["gpt-4o-mini", "claude-3-5-sonnet"]
[fallbacks.context_window]
"gpt-4o-mini" = ["gpt-4.1"]
[fallbacks.content_policy]
"gpt-4o" = ["claude-3-5-sonnet"]
`,
      'toml',
      { KEY_A: A },
    );
    expect(c.fallbacks).toEqual({
      default: { 'gpt-4o': ['gpt-4o-mini', 'claude-3-5-sonnet'] },
      contextWindow: { 'gpt-4o-mini': ['gpt-4.1'] },
      contentPolicy: { 'gpt-4o': ['claude-3-5-sonnet'] },
    });
  });

  it('reads the environment as JSON', () => {
    const c = configFromEnv({
      OPENAI_API_KEY: A,
      LB_FALLBACKS: '{"gpt-4o":["gpt-4o-mini"]}',
      LB_CONTEXT_WINDOW_FALLBACKS: '{"gpt-4o-mini":["gpt-4.1"]}',
      LB_CONTENT_POLICY_FALLBACKS: '{"gpt-4o":["claude-3-5-sonnet"]}',
    });
    expect(c.fallbacks).toEqual({
      default: { 'gpt-4o': ['gpt-4o-mini'] },
      contextWindow: { 'gpt-4o-mini': ['gpt-4.1'] },
      contentPolicy: { 'gpt-4o': ['claude-3-5-sonnet'] },
    });
    expect(c.warnings).toEqual([]);
  });

  it('the file wins over the environment', () => {
    const c = parseConfig(`${ENDPOINTS}\n[fallbacks]\n"gpt-4o" = ["x"]\n`, 'toml', {
      KEY_A: A,
      LB_FALLBACKS: '{"gpt-4o":["y"]}',
    });
    expect(c.fallbacks?.default).toEqual({ 'gpt-4o': ['x'] });
  });

  it('no chains: no fallbacks', () => {
    expect(configFromEnv({ OPENAI_API_KEY: A }).fallbacks).toBeUndefined();
  });

  it('names the variable or key that is wrong', () => {
    const e1 = errorOf(() => configFromEnv({ OPENAI_API_KEY: A, LB_FALLBACKS: '{gpt-4o' }));
    expect(lines(e1.errors).join('\n')).toContain('LB_FALLBACKS');
    const e2 = errorOf(() =>
      configFromEnv({ OPENAI_API_KEY: A, LB_CONTEXT_WINDOW_FALLBACKS: '{"gpt-4o":"gpt-4.1"}' }),
    );
    expect(lines(e2.errors).join('\n')).toContain('LB_CONTEXT_WINDOW_FALLBACKS');
    const e3 = errorOf(() =>
      parseConfig(`${ENDPOINTS}\n[fallbacks]\n"gpt-4o" = "x"\n`, 'toml', { KEY_A: A }),
    );
    expect(lines(e3.errors).join('\n')).toMatch(/fallbacks/);
  });
});
