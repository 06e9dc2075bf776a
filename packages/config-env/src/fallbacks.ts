import * as z from 'zod';
import type { ConfigIssue } from './issues.js';

/** Model fallback chains (`@lb/exchange`'s `FallbackConfig`): the models to try next, by model or group name. */
export interface FallbacksConfig {
  /** `[fallbacks]`, env `LB_FALLBACKS`: when the model or group is unavailable, or `model_not_found`. */
  default: Readonly<Record<string, readonly string[]>>;
  /** `[fallbacks.context_window]`, env `LB_CONTEXT_WINDOW_FALLBACKS`: a context-length error. */
  contextWindow: Readonly<Record<string, readonly string[]>>;
  /** `[fallbacks.content_policy]`, env `LB_CONTENT_POLICY_FALLBACKS`: a content-policy refusal (400). */
  contentPolicy: Readonly<Record<string, readonly string[]>>;
}

/** The environment variables of the chains, JSON objects `{"model": ["next", …]}`. */
export const FALLBACK_ENV: Readonly<Record<string, string[]>> = {
  LB_FALLBACKS: ['fallbacks'],
  LB_CONTEXT_WINDOW_FALLBACKS: ['fallbacks', 'context_window'],
  LB_CONTENT_POLICY_FALLBACKS: ['fallbacks', 'content_policy'],
};

const chain = z.array(z.string().trim().min(1, 'a model name'), {
  error: 'expected a list of model names',
});
const table = z.record(z.string(), chain, { error: 'expected a table of model → [models]' });

/** `[fallbacks]` in a file: chains by model, and the `context_window` / `content_policy` sub-tables. */
export const fallbacksSchema = z
  .record(z.string(), z.union([chain, table]), {
    error:
      'expected a table of model → [models] (with [fallbacks.context_window] / [fallbacks.content_policy])',
  })
  .superRefine((v, ctx) => {
    for (const [k, x] of Object.entries(v)) {
      const sub = k === 'context_window' || k === 'content_policy';
      if (sub !== !Array.isArray(x))
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: sub ? 'expected a table of model → [models]' : 'expected a list of model names',
        });
    }
  });

/** Reads the three JSON variables into `[fallbacks]` of an env document. Never throws: problems go to `errors`. */
export function fallbacksFromEnv(
  read: (name: string) => string | undefined,
  errors: ConfigIssue[],
): Record<string, unknown> | undefined {
  let out: Record<string, unknown> | undefined;
  for (const [name, path] of Object.entries(FALLBACK_ENV)) {
    const v = read(name);
    if (v === undefined) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      errors.push({ path: name, message: 'expected a JSON object such as {"gpt-4o":["gpt-4o-mini"]}' });
      continue;
    }
    const r = table.safeParse(parsed);
    if (!r.success) {
      errors.push({ path: name, message: 'expected a JSON object of model → [models]' });
      continue;
    }
    out ??= {};
    if (path.length === 1) Object.assign(out, r.data);
    else out[path[1]] = { ...((out[path[1]] as object | undefined) ?? {}), ...r.data };
  }
  return out;
}

/** The chains of a validated `[fallbacks]`, or undefined when it has none. */
export function buildFallbacks(doc: Record<string, unknown> | undefined): FallbacksConfig | undefined {
  if (doc === undefined) return undefined;
  const d: Record<string, string[]> = {};
  let cw: Record<string, string[]> = {};
  let cp: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k === 'context_window') cw = v as Record<string, string[]>;
    else if (k === 'content_policy') cp = v as Record<string, string[]>;
    else d[k] = v as string[];
  }
  if (!Object.keys(d).length && !Object.keys(cw).length && !Object.keys(cp).length) return undefined;
  return { default: d, contextWindow: cw, contentPolicy: cp };
}
