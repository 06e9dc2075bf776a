import { readFileSync } from 'node:fs';
import { type FakeUpstream, fakeKey, startFakeUpstream } from '@lb/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createServer, type LbServer } from '../src/index.js';

// The Grafana dashboard (examples/grafana/lb-server.json) against what lb-server really exports: every metric and
// every label it queries is read from a running server's registry (GET /metrics), never from a hand-kept list.

const root = new URL('../../../', import.meta.url);
const dashboard = JSON.parse(readFileSync(new URL('examples/grafana/lb-server.json', root), 'utf8'));
const compose = parse(readFileSync(new URL('packages/server/docker-compose.yml', root), 'utf8'));

let a: FakeUpstream;
let b: FakeUpstream;
let server: LbServer;
/** Metric family → type, from the `# TYPE` lines. */
const families = new Map<string, string>();
/** Sample name → label names seen on it. */
const labels = new Map<string, Set<string>>();

beforeAll(async () => {
  [a, b] = await Promise.all([startFakeUpstream({ name: 'a' }), startFakeUpstream({ name: 'b' })]);
  server = createServer({
    router: {
      endpoints: [
        { id: 'a', url: a.url, apiKey: fakeKey('a'), priority: 1, limits: { rpm: 1000 } },
        { id: 'b', url: b.url, apiKey: fakeKey('b'), priority: 2 },
      ],
      backoff: { initialMs: 1, maxMs: 2 },
    },
    server: { port: 0 },
    logDestination: { write: () => true } as any,
  });
  const base = await server.listen();
  // Traffic that gives the labelled families samples: a success, a failover, a stream, tokens.
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'x', maxRetries: 0 });
  a.next({ type: 'status', status: 500 });
  await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
  const s = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'x' }],
    stream: true,
  });
  for await (const _ of s) {
    // drain
  }
  await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
  const text = await (await fetch(`${base}/metrics`)).text();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) families.set(t[1], t[2]);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/.exec(line);
    if (m) {
      const set = labels.get(m[1]) ?? new Set<string>();
      for (const kv of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) set.add(kv[1]);
      labels.set(m[1], set);
    }
  }
});

afterAll(async () => {
  await server.close(100);
  await Promise.all([a.close(), b.close()]);
});

const panels: any[] = dashboard.panels;
const queries = panels.flatMap((p) => (p.targets ?? []).map((t: any) => ({ panel: p, target: t })));

/** The family a sample name belongs to (`lb_x_seconds_bucket` → `lb_x_seconds`). */
function familyOf(name: string): string | undefined {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return families.get(base) === 'histogram' ? base : undefined;
}

describe('examples/grafana/lb-server.json', () => {
  it('is a dashboard Grafana imports: schema fields, unique ids, a 24-column grid, targets with refIds', () => {
    expect(dashboard).toMatchObject({ title: expect.any(String), uid: 'lb-server', editable: true });
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(Array.isArray(dashboard.templating.list)).toBe(true);
    const ds = dashboard.templating.list.find((v: any) => v.type === 'datasource');
    expect(ds).toMatchObject({ name: 'datasource', query: 'prometheus' });
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const kinds = new Set(['row', 'timeseries', 'stat', 'state-timeline', 'gauge', 'table', 'bargauge']);
    for (const p of panels) {
      expect(kinds.has(p.type), `${p.title}: panel type ${p.type}`).toBe(true);
      expect(typeof p.title).toBe('string');
      const g = p.gridPos;
      expect(g.x).toBeGreaterThanOrEqual(0);
      expect(g.x + g.w).toBeLessThanOrEqual(24);
      expect(g.h).toBeGreaterThan(0);
      if (p.type === 'row') continue;
      expect(p.datasource).toEqual({ type: 'prometheus', uid: '$' + '{datasource}' });
      expect(p.targets.length).toBeGreaterThan(0);
      const refs = p.targets.map((t: any) => t.refId);
      expect(new Set(refs).size, p.title).toBe(refs.length);
      for (const t of p.targets) expect(typeof t.expr).toBe('string');
    }
    // Panels on one row do not overlap.
    const cells = new Set<string>();
    for (const p of panels) {
      const g = p.gridPos;
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });

  it('queries only metrics lb-server exports, with labels they carry', () => {
    expect(families.size).toBeGreaterThan(10);
    const used = new Set<string>();
    for (const { panel, target } of queries) {
      const names = [...target.expr.matchAll(/\b(lb_[a-z0-9_]+)/g)].map((m) => m[1]);
      expect(names.length, panel.title).toBeGreaterThan(0);
      for (const n of names) {
        const fam = familyOf(n);
        expect(fam, `${panel.title}: ${n} is not exported`).toBeDefined();
        used.add(fam!);
        const seen = labels.get(n);
        if (!seen) continue;
        const mentioned = [
          ...[...target.expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1].split(',')),
          ...[...target.expr.matchAll(new RegExp(`${n}\\{([^}]*)\\}`, 'g'))].flatMap((m) =>
            [...m[1].matchAll(/([a-z_]+)\s*(?:=~|!=|=)/g)].map((x) => x[1]),
          ),
        ]
          .map((l) => l.trim())
          .filter((l) => l !== 'le' && l !== 'job' && l !== '');
        for (const l of mentioned) expect(seen.has(l), `${panel.title}: ${n} has no label ${l}`).toBe(true);
      }
    }
    // What the issue asks the board to show.
    for (const f of [
      'lb_requests_total',
      'lb_errors_total',
      'lb_failovers_total',
      'lb_breaker_state',
      'lb_request_duration_seconds',
      'lb_time_to_first_byte_seconds',
      'lb_tokens_total',
    ])
      expect(used.has(f), f).toBe(true);
  });

  it("is loaded with Prometheus by the compose file's monitoring profile", () => {
    const { grafana, prometheus } = compose.services;
    expect(grafana.profiles).toEqual(['monitoring']);
    expect(prometheus.profiles).toEqual(['monitoring']);
    expect(grafana.volumes).toContain('../../examples/grafana:/var/lib/grafana/dashboards/lb:ro');
    const ds = parse(compose.configs['grafana-datasource'].content);
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const provider = parse(compose.configs['grafana-dashboards'].content);
    expect(provider.providers[0].options.path).toBe('/var/lib/grafana/dashboards/lb');
    expect(parse(compose.configs.prometheus.content).scrape_configs[0].static_configs[0].targets).toEqual([
      'lb-server:8080',
    ]);
  });
});
