import { describe, expect, it } from 'vitest';
import { maskKey, redact, secretForms } from '../src/index.js';

const KEY = 'sk-proj-Up+stream/Key=0123456789abcdef~N0IA>';

describe('redact', () => {
  it('masks a key raw, base64, base64url and URL-encoded', () => {
    const b64 = Buffer.from(KEY).toString('base64').replace(/=+$/, '');
    const b64url = Buffer.from(KEY).toString('base64url');
    const url = encodeURIComponent(KEY);
    expect(secretForms(KEY)).toEqual([KEY, b64, b64url, url]);
    const out = redact(`raw ${KEY} b64 ${b64} b64url ${b64url} url ${url}`, [KEY]);
    for (const f of [KEY, b64, b64url, url]) expect(out).not.toContain(f);
    expect(out).toBe(`raw ${maskKey(KEY)} b64 ${maskKey(KEY)} b64url ${maskKey(KEY)} url ${maskKey(KEY)}`);
  });

  it('leaves text without a key as it is', () => {
    expect(redact('HTTP 500', [KEY, undefined, 'abc'])).toBe('HTTP 500');
  });
});
