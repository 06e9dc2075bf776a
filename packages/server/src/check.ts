import { classify, Endpoint, type EndpointConfig, redact } from '@lb/core';
import type { Dialect } from '@lb/providers';

/** The outcome of probing one endpoint. */
export interface CheckResult {
  id: string;
  url: string;
  key: string;
  ok: boolean;
  status: number | undefined;
  latencyMs: number;
  /** `ok`, or what went wrong (key masked). */
  detail: string;
}

/**
 * Sends one tiny probe (`GET <url><healthCheck>`, `/models` by default: free, no tokens) to every endpoint with its
 * own key, all at once. Never throws for an endpoint's failure: each result says what happened.
 *
 * @example
 * const results = await checkEndpoints(config.router.endpoints);
 * console.log(formatCheckTable(results));
 */
export async function checkEndpoints(
  endpoints: readonly EndpointConfig[],
  opts: { timeoutMs?: number; dialect?: (name: string) => Dialect | undefined } = {},
): Promise<CheckResult[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return Promise.all(
    endpoints.map(async (cfg, i) => {
      const ep = new Endpoint(cfg, i);
      const t0 = performance.now();
      const base = { id: ep.id, url: ep.url, key: ep.maskedKey || '(none)' };
      try {
        const dialect = ep.provider === 'openai' ? undefined : opts.dialect?.(ep.provider);
        let url = ep.url + ep.healthCheck;
        let headers: Record<string, string> = { ...ep.headers };
        if (ep.apiKey) headers.authorization = `Bearer ${ep.apiKey}`;
        if (dialect) {
          const up = dialect.prepare({
            endpoint: ep,
            operation: 'models.list',
            method: 'GET',
            path: ep.healthCheck,
            headers: {},
            body: undefined,
            json: undefined,
            upstreamModel: undefined,
            stream: false,
          });
          url = up.url;
          headers = up.headers;
        }
        // Loaded here: the package index costs ~11 MB of RSS that a serving proxy does not need.
        const { request } = await import('undici');
        const res = await request(url, {
          method: 'GET',
          headers,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: AbortSignal.timeout(timeoutMs),
        });
        await res.body.dump();
        const latencyMs = performance.now() - t0;
        const v = classify({ status: res.statusCode, headers: res.headers as Record<string, string> });
        const ok = v.kind === 'success';
        const detail = ok
          ? 'ok'
          : v.kind === 'auth'
            ? `key rejected (${res.statusCode})`
            : v.kind === 'rate-limit'
              ? 'rate limited (429): reachable, key valid'
              : `HTTP ${res.statusCode}`;
        return { ...base, ok: ok || v.kind === 'rate-limit', status: res.statusCode, latencyMs, detail };
      } catch (e) {
        const err = e as { message?: string; code?: string; cause?: { code?: string } };
        const code = err.cause?.code ?? err.code;
        const msg = `${err.message ?? String(e)}${code && !String(err.message).includes(code) ? ` (${code})` : ''}`;
        return {
          ...base,
          ok: false,
          status: undefined,
          latencyMs: performance.now() - t0,
          detail: redact(msg, [ep.apiKey]),
        };
      }
    }),
  );
}

/**
 * Renders check results as an aligned text table (what `lb-server check` prints).
 *
 * @example
 * console.log(formatCheckTable(await checkEndpoints(config.router.endpoints)));
 * // ENDPOINT  URL                        KEY             RESULT  STATUS  LATENCY
 * // primary   https://api.openai.com/v1  sk-proj...N0IA  ✓ ok    200     182 ms
 */
export function formatCheckTable(results: readonly CheckResult[]): string {
  const rows = [
    ['ENDPOINT', 'URL', 'KEY', 'RESULT', 'STATUS', 'LATENCY'],
    ...results.map((r) => [
      r.id,
      r.url,
      r.key,
      r.ok ? `✓ ${r.detail}` : `✗ ${r.detail}`,
      r.status === undefined ? '-' : String(r.status),
      `${Math.round(r.latencyMs)} ms`,
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
