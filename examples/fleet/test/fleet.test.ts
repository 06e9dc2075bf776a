import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { configFromFile } from '@lb/config-env';
import {
  type FakeUpstream,
  type NodeProcess,
  startFakeUpstream,
  startNode,
  startRedis,
  type TestRedis,
} from '@lb/testing';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const dir = path.resolve(__dirname, '..');
const read = (f: string) => fs.readFileSync(path.join(dir, f), 'utf8');
const cli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@lb/server/package.json')),
  'bin/lb-server.mjs',
);

/** Every document of every manifest in k8s/, validated against the Kubernetes API's schemas (kubernetes-models). */
const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};
const manifests = fs
  .readdirSync(path.join(dir, 'k8s'))
  .sort()
  .flatMap((f) => parseAllDocuments(read(`k8s/${f}`)).map((d) => ({ file: f, doc: d.toJS() })));
const find = (kind: string, name: string) =>
  manifests.find((m) => m.doc.kind === kind && m.doc.metadata.name === name)?.doc;

describe('Kubernetes manifests (k8s/)', () => {
  it('every document is a known kind and validates against its schema', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(7);
    for (const { file, doc } of manifests) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      expect(Model, `${file}: ${doc.apiVersion} ${doc.kind}`).toBeDefined();
      expect(() => new Model(doc).validate(), file).not.toThrow();
    }
  });

  it('a Deployment of 3 with probes, a Service, a ConfigMap, a Secret and a PodDisruptionBudget that fit together', () => {
    const dep = find('Deployment', 'lb-server');
    const labels = dep.spec.template.metadata.labels;
    expect(dep.spec.replicas).toBe(3);
    const c = dep.spec.template.spec.containers[0];
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'])
      expect(c[probe].httpGet.path).toBe('/');
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(find('Service', 'lb-server').spec.selector).toEqual(labels);
    expect(find('PodDisruptionBudget', 'lb-server').spec.selector.matchLabels).toEqual(labels);
    expect(find('Secret', c.envFrom[0].secretRef.name)).toBeDefined();
    const volume = dep.spec.template.spec.volumes.find((v: any) => v.configMap);
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
    const mount = c.volumeMounts.find((m: any) => m.name === volume.name).mountPath;
    expect(Object.keys(find('ConfigMap', volume.configMap.name).data).map((k) => `${mount}/${k}`)).toContain(
      env.LB_CONFIG,
    );
    expect(env.LB_REDIS_URL).toBe(`redis://${find('Service', 'lb-redis').metadata.name}:6379/0`);
    // terminationGracePeriodSeconds outlasts the server's drain (shutdown_timeout).
    expect(dep.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      configFromFile(path.join(dir, 'lb.toml'), { OPENAI_API_KEY: 'sk-x' }).server.shutdownTimeoutMs,
    );
  });

  it("the ConfigMap's lb.toml is ../lb.toml, unchanged", () => {
    expect(find('ConfigMap', 'lb-config').data['lb.toml']).toBe(read('lb.toml'));
  });
});

describe('compose (compose.yaml)', () => {
  const compose = parse(read('compose.yaml'));
  it('three lb replicas on one Redis, nginx in front, Prometheus scraping each, every mounted file present', () => {
    const lb = compose.services.lb;
    expect(lb.deploy.replicas).toBe(3);
    expect(lb.environment.LB_REDIS_URL).toBe('redis://redis:6379/0');
    expect(compose.services.redis).toBeDefined();
    for (const s of Object.values<any>(compose.services)) {
      for (const v of s.volumes ?? []) expect(fs.existsSync(path.join(dir, v.split(':')[0])), v).toBe(true);
    }
    expect(read('nginx.conf')).toMatch(/server lb:8080;/);
    const prom = parse(read('prometheus.yml'));
    expect(prom.scrape_configs[0].dns_sd_configs[0]).toEqual({ names: ['lb'], type: 'A', port: 8080 });
  });
});

describe('the fleet on this machine: three replicas of lb-server on its lb.toml, sharing a real Redis', () => {
  let redis: TestRedis;
  let upstream: FakeUpstream;
  let replicas: NodeProcess[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    upstream = await startFakeUpstream({ name: 'upstream' });
    const env = {
      OPENAI_API_KEY: 'sk-proj-example-fleet-5555N0IA',
      OPENAI_UPSTREAM_URL: upstream.url,
      LB_REDIS_URL: redis.url,
    };
    replicas = await Promise.all(
      [1, 2, 3].map(() =>
        startNode(
          dir,
          [cli, '--config', 'lb.toml', '--port', '0', '--host', '127.0.0.1'],
          env,
          /listening on (http:\/\/\S+)/,
        ),
      ),
    );
  });
  afterAll(async () => {
    for (const r of replicas) expect(await r.stop()).toBe(0);
    await upstream?.close();
    await redis?.stop();
  });

  it('each replica serves, and its /health shows the shared store', async () => {
    for (const r of replicas) {
      const res = await fetch(`${r.match[1]}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-lb-endpoint')).toBe('openai-a');
      const health = await (await fetch(`${r.match[1]}/health`)).json();
      expect(health.sharedStore).toMatchObject({ kind: 'redis', status: 'ready' });
    }
    expect(upstream.count('/chat/completions')).toBe(3);
  });
});
