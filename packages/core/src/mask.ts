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
 * Replaces every occurrence of the given secrets in `text` by their masked form.
 * Used on upstream error messages before they reach logs, events or snapshots.
 */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 4 && out.includes(s)) out = out.split(s).join(maskKey(s));
  }
  return out;
}
