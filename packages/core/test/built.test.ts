import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { nodeStartMs, pacedTimeout } from '@lb/testing';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../../..');

// The first test starts a node process of its own: its time limit follows how long node takes to start now.
const SPAWN_TIMEOUT = pacedTimeout(nodeStartMs(), 10);

describe('the built package', () => {
  it('works from a tiny script that imports only @lb/core (examples/core-only)', {
    timeout: SPAWN_TIMEOUT,
  }, () => {
    const out = execFileSync(process.execPath, ['index.mjs'], {
      cwd: path.join(root, 'examples/core-only'),
      encoding: 'utf8',
    });
    expect(out).toContain('attempt 1 on primary failed: server 500');
    expect(out).toMatch(/answered by backup: 200 \{"ok":true/);
    expect(out).toContain('key=sk-proj...N0IA');
    expect(out).not.toContain('example-primary-key');
  });

  it('loads through require() (CJS build) too', () => {
    const require = createRequire(import.meta.url);
    const core = require(path.join(root, 'packages/core/dist/index.cjs'));
    const r = core.createRouter({ endpoints: [{ url: 'http://127.0.0.1:1/v1' }] });
    expect(r.pick().endpoint.id).toBe('endpoint-1');
  });

  it('a strategy registered with the CommonJS copy is known to the ESM copy, and the other way round', async () => {
    const require = createRequire(import.meta.url);
    const cjs = require(path.join(root, 'packages/core/dist/index.cjs'));
    const esm = await import(pathToFileURL(path.join(root, 'packages/core/dist/index.js')).href);
    const last = () => ({ name: 'last', pick: (c: readonly unknown[]) => c[c.length - 1] });
    cjs.registerStrategy('plugin-from-cjs', last);
    esm.registerStrategy('plugin-from-esm', last);
    for (const copy of [cjs, esm]) {
      expect(copy.strategyNames()).toEqual(
        expect.arrayContaining(['plugin-from-cjs', 'plugin-from-esm', 'priority']),
      );
      const r = copy.createRouter({
        strategy: copy === esm ? 'plugin-from-cjs' : 'plugin-from-esm',
        endpoints: [
          { id: 'a', url: 'http://127.0.0.1:1/v1' },
          { id: 'b', url: 'http://127.0.0.1:2/v1' },
        ],
      });
      expect(r.pick().endpoint.id).toBe('b');
    }
  });

  it('EndpointSlot works across its CommonJS and ESM copies (an app that requires one package, imports another)', async () => {
    const require = createRequire(import.meta.url);
    const cjs = require(path.join(root, 'packages/core/dist/index.cjs'));
    const esm = await import(pathToFileURL(path.join(root, 'packages/core/dist/index.js')).href);
    const cjsInternal = require(path.join(root, 'packages/core/dist/internal.cjs'));
    const esmInternal = await import(pathToFileURL(path.join(root, 'packages/core/dist/internal.js')).href);
    // Unstable building blocks live behind `@lb/core/internal`, not the public entry.
    expect([cjs.EndpointSlot, esm.EndpointSlot, cjs.fastRandom, esm.fastRandom]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    const [a] = esm.createRouter({ endpoints: [{ id: 'a', url: 'http://127.0.0.1:1/v1' }] }).endpoints;
    const [b] = cjs.createRouter({ endpoints: [{ id: 'b', url: 'http://127.0.0.1:1/v1' }] }).endpoints;
    const fromCjs = new cjsInternal.EndpointSlot();
    const fromEsm = new esmInternal.EndpointSlot();
    fromCjs.set(a, 'cjs on esm');
    fromEsm.set(a, 'esm on esm');
    fromEsm.set(b, 'esm on cjs');
    // One allocator for both copies: the two slots never take the same place.
    expect([fromCjs.get(a), fromEsm.get(a), fromEsm.get(b), fromCjs.get(b)]).toEqual([
      'cjs on esm',
      'esm on esm',
      'esm on cjs',
      undefined,
    ]);
    expect(JSON.stringify({ ...a })).not.toContain('on esm');
    fromCjs.release();
    fromEsm.release();
  });

  it('has no node: imports and no dependency but eventemitter3', async () => {
    const fs = await import('node:fs');
    const esm = fs.readFileSync(path.join(root, 'packages/core/dist/index.js'), 'utf8');
    expect(esm).not.toMatch(/from ['"]node:/);
    const imports = [...esm.matchAll(/^import .* from ['"]([^'"]+)['"]/gm)].map((m) => m[1]);
    expect(imports).toEqual(['eventemitter3']);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'packages/core/package.json'), 'utf8'));
    expect(Object.keys(pkg.dependencies)).toEqual(['eventemitter3']);
  });
});
