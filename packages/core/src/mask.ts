/**
 * Masks a secret for display: the first 7 and last 4 characters survive, the rest is elided
 * (`sk-proj-abc…xyzN0IA` → `sk-proj...N0IA`). Short secrets are masked whole.
 *
 * @example
 * maskKey('sk-proj-1234567890abcdefN0IA'); // 'sk-proj...N0IA'
 */
export function maskKey(key: string | undefined | null): string {
  if (!key) return '';
  if (key.length < 16) return '***';
  return `${key.slice(0, 7)}...${key.slice(-4)}`;
}

/**
 * The forms of a secret that are looked for in text that may echo it: the secret itself, its base64 and base64url
 * encodings (of the key alone, padding dropped: `Bearer`-less, as a Basic or custom header would carry it) and its
 * URL encoding (when it differs).
 *
 * @example
 * secretForms('sk-a+b/c1234'); // ['sk-a+b/c1234', 'c2stYStiL2MxMjM0', 'sk-a%2Bb%2Fc1234']
 */
export function secretForms(secret: string): string[] {
  const forms = [secret];
  let b64: string | undefined;
  try {
    b64 = btoa(secret).replace(/=+$/, '');
  } catch {
    // not Latin-1: no base64 form
  }
  if (b64 !== undefined) {
    forms.push(b64);
    const url = b64.replace(/\+/g, '-').replace(/\//g, '_');
    if (url !== b64) forms.push(url);
  }
  const enc = encodeURIComponent(secret);
  if (enc !== secret) forms.push(enc);
  return forms;
}

/**
 * Replaces every occurrence of the given secrets in `text` — raw, base64 or URL-encoded ({@link secretForms}) — by
 * their masked form. Used on upstream error messages before they reach logs, events or snapshots.
 */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) {
    if (!s || s.length < 4) continue;
    for (const form of secretForms(s)) if (out.includes(form)) out = out.split(form).join(maskKey(s));
  }
  return out;
}
