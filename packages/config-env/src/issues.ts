import { maskKey } from '@lb/core';

/** One problem found in a config: where (`endpoints[2].base_url`, or an env var name) and a plain sentence. */
export interface ConfigIssue {
  /** Path in the config document (`endpoints[2].base_url`, `models["gpt-4o"].backends[0].endpoint`) or env var name. */
  readonly path: string;
  /** What is wrong, in one sentence. Never contains a secret. */
  readonly message: string;
}

/** Formats a path of keys and indexes: `endpoints[2].base_url`, `models["gpt-4.1"].strategy`. */
export function formatPath(parts: readonly PropertyKey[]): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const s = String(p);
      if (/^[A-Za-z_][\w-]*$/.test(s)) out += out ? `.${s}` : s;
      else out += `[${JSON.stringify(s)}]`;
    }
  }
  return out || '(root)';
}

const SECRET_KEY = /(^|_)(api_?keys?|admin_key|key|secret|token|password|authorization|redis_url)$/i;

/** True when a key names a secret (its values are never echoed). */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Shows a received value in a message: JSON, truncated; URLs lose their password. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') {
    let s = value;
    if (/^[a-z][\w+.-]*:\/\/[^/]*@/i.test(s)) {
      try {
        const u = new URL(s);
        if (u.password) s = s.replace(`:${u.password}@`, `:${maskKey(u.password) || '***'}@`);
      } catch {
        s = s.replace(/:\/\/[^/]*@/, '://***@');
      }
    }
    return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a table';
  return typeof value;
}

/** Levenshtein distance, small strings only. */
function distance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = [i];
    for (let j = 1; j <= n; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[n];
}

const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');

/** The closest candidate to `word` when it is close enough to be a typo, else undefined. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const w = norm(word);
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const nc = norm(c);
    if (nc === w) return c;
    const d = distance(w, nc);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = w.length <= 2 ? 0 : Math.max(1, Math.min(3, Math.floor(w.length / 3)));
  return bestD <= limit ? best : undefined;
}

/** `; did you mean "x"?` or nothing. */
export function didYouMean(word: string, candidates: Iterable<string>, quote = true): string {
  const s = suggest(word, candidates);
  return s === undefined ? '' : `; did you mean ${quote ? JSON.stringify(s) : s}?`;
}
