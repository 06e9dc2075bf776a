#!/usr/bin/env node
// Tries a release the way a user would, before it is published (run by .ci/run after the build):
//  1. packs every public package (`pnpm pack`: `workspace:` ranges become versions) and checks each tarball ships
//     its LICENSE and README and no source map;
//  2. installs the tarballs with npm into a fresh project OUTSIDE the workspace (`npm i ./lb-core-x.y.z.tgz …`,
//     plus `openai`, `typescript` and `@types/node` from the registry), then runs there an ESM script, a CJS
//     script (both send a chat completion through the router to a fake upstream on 127.0.0.1), the `lb-server`
//     bin, and `tsc --noEmit` under `node16` and under `bundler` resolution; and, as a plugin author would, the
//     contract test of examples/plugin-strategy with `@lb/testing` (its tarball) and `vitest` (the registry);
//  3. `changeset version` on a throwaway copy of the workspace's manifests, and `pnpm publish -r --dry-run`;
//  4. builds the container image where a Docker daemon answers, and says it skipped it where none does.
// Prints one line per step; exits 1 if any failed. Keep the temp project with `--keep`.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const keep = process.argv.includes('--keep');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-pack-smoke-'));
const tarballs = path.join(work, 'tarballs');
const app = path.join(work, 'app');
fs.mkdirSync(tarballs);
fs.mkdirSync(app);
let failed = 0;
const t0 = Date.now();

/** Runs a command; prints `ok`/`FAIL` with the step's name and, on failure, its output. */
function step(name, cmd, args, opts = {}) {
  const t = Date.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const ok = r.status === 0;
  if (!ok) failed++;
  console.log(`[pack-smoke] ${ok ? 'ok  ' : 'FAIL'} ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  if (!ok) console.log(`${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim());
  return r;
}
/** `node <args>` in `cwd`, without blocking the others; reported like {@link step}. */
function stepAsync(name, args, cwd) {
  const t = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      if (code !== 0) failed++;
      console.log(
        `[pack-smoke] ${code === 0 ? 'ok  ' : 'FAIL'} ${name} (${((Date.now() - t) / 1000).toFixed(1)} s)`,
      );
      if (code !== 0) console.log(out.trim());
      resolve();
    });
  });
}
const pnpm = (args, opts) => ['npx', ['-y', 'pnpm@10', ...args], opts];

// ---- 1. pack
const publics = fs
  .readdirSync(path.join(root, 'packages'))
  .sort()
  .map((dir) => ({
    dir,
    pkg: JSON.parse(fs.readFileSync(path.join(root, 'packages', dir, 'package.json'), 'utf8')),
  }))
  .filter(({ pkg }) => !pkg.private);
for (const { dir, pkg } of publics) {
  step(
    `pack ${pkg.name}`,
    ...pnpm(['pack', '--pack-destination', tarballs], { cwd: path.join(root, 'packages', dir) }),
  );
}
const tgz = fs.readdirSync(tarballs).filter((f) => f.endsWith('.tgz'));
for (const f of tgz) {
  const list = spawnSync('tar', ['-tzf', path.join(tarballs, f)], { encoding: 'utf8' }).stdout.split('\n');
  const problems = [];
  if (!list.includes('package/LICENSE')) problems.push('no LICENSE');
  if (!list.includes('package/README.md')) problems.push('no README.md');
  if (list.some((e) => e.endsWith('.map'))) problems.push('ships source maps');
  const manifest = spawnSync('tar', ['-xzOf', path.join(tarballs, f), 'package/package.json'], {
    encoding: 'utf8',
  });
  if (manifest.stdout.includes('workspace:')) problems.push('a `workspace:` range leaked into package.json');
  if (problems.length) failed++;
  console.log(
    `[pack-smoke] ${problems.length ? 'FAIL' : 'ok  '} ${f}: ${problems.join(', ') || 'LICENSE, README, no maps'}`,
  );
}

// ---- 2. install the tarballs into a fresh project and use them
fs.writeFileSync(
  path.join(app, 'package.json'),
  `${JSON.stringify({ name: 'lb-smoke', private: true }, null, 2)}\n`,
);
fs.cpSync(path.join(root, 'scripts', 'pack-smoke'), app, { recursive: true });
// A plugin author's package: the strategy and its contract test, as examples/plugin-strategy has them.
const plugin = path.join(app, 'plugin-strategy');
fs.mkdirSync(path.join(plugin, 'test'), { recursive: true });
for (const f of ['strategy.mjs', 'test/contract.test.mjs'])
  fs.cpSync(path.join(root, 'examples', 'plugin-strategy', f), path.join(plugin, f));
step(
  `npm i ${tgz.length} tarballs + openai 6, typescript 5.9, @types/node 22, vitest 4 in ${app}`,
  'npm',
  [
    'install',
    '--no-audit',
    '--no-fund',
    '--loglevel=error',
    ...tgz.map((f) => `../tarballs/${f}`),
    'openai@6',
    'typescript@~5.9.3',
    '@types/node@22',
    'vitest@4',
  ],
  { cwd: app },
);
step('ESM: import every package, one request through the router (esm.mjs)', process.execPath, ['esm.mjs'], {
  cwd: app,
});
step('CJS: require every package, one request through the router (cjs.cjs)', process.execPath, ['cjs.cjs'], {
  cwd: app,
});
const help = step('npx lb-server --help', 'npx', ['--no-install', 'lb-server', '--help'], { cwd: app });
if (help.status === 0 && !/lb-server/.test(help.stdout)) {
  failed++;
  console.log('[pack-smoke] FAIL lb-server --help did not name itself');
}
step(
  'plugin author: the contract test of examples/plugin-strategy, @lb/testing from its tarball (npx vitest run)',
  'npx',
  ['--no-install', 'vitest', 'run'],
  { cwd: plugin, env: { ...process.env, CI: '1' } },
);
// The two type checks run side by side (each is ~40 s, mostly on one core).
const tsc = path.join(app, 'node_modules', 'typescript', 'bin', 'tsc');
await Promise.all([
  stepAsync('tsc --noEmit, module node16 (ESM and CJS files)', [tsc, '-p', 'tsconfig.node16.json'], app),
  stepAsync('tsc --noEmit, moduleResolution bundler', [tsc, '-p', 'tsconfig.bundler.json'], app),
]);

// ---- 3. changeset version (on a copy) and pnpm publish --dry-run
const copy = path.join(work, 'workspace');
for (const f of ['package.json', 'pnpm-workspace.yaml']) fs.cpSync(path.join(root, f), path.join(copy, f));
fs.cpSync(path.join(root, '.changeset'), path.join(copy, '.changeset'), { recursive: true });
for (const parent of ['packages', 'examples']) {
  if (!fs.existsSync(path.join(root, parent))) continue;
  for (const dir of fs.readdirSync(path.join(root, parent))) {
    for (const f of ['package.json', 'CHANGELOG.md']) {
      const from = path.join(root, parent, dir, f);
      if (fs.existsSync(from)) fs.cpSync(from, path.join(copy, parent, dir, f));
    }
  }
}
for (const f of ['package.json', 'CHANGELOG.md']) {
  if (fs.existsSync(path.join(root, 'bench', f)))
    fs.cpSync(path.join(root, 'bench', f), path.join(copy, 'bench', f));
}
fs.symlinkSync(path.join(root, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
const version = step(
  'changeset version (on a throwaway copy)',
  process.execPath,
  [path.join(root, 'node_modules', '@changesets', 'cli', 'bin.js'), 'version'],
  { cwd: copy },
);
if (version.status === 0) {
  const core = JSON.parse(fs.readFileSync(path.join(copy, 'packages', 'core', 'package.json'), 'utf8'));
  const logged = fs.existsSync(path.join(copy, 'packages', 'core', 'CHANGELOG.md'));
  console.log(
    `[pack-smoke]      @lb/core would become ${core.version}${logged ? ', with a CHANGELOG.md' : ''}`,
  );
}
step('pnpm publish -r --dry-run', ...pnpm(['publish', '-r', '--dry-run', '--no-git-checks'], { cwd: root }));

// ---- 4. the container image
const docker = spawnSync('docker', ['info'], { encoding: 'utf8', timeout: 15_000 });
if (docker.status === 0) {
  step('docker build -f packages/server/Dockerfile .', 'docker', [
    'build',
    '-q',
    '-f',
    path.join(root, 'packages', 'server', 'Dockerfile'),
    '-t',
    'lb-server:smoke',
    root,
  ]);
} else {
  console.log(
    `[pack-smoke] skip container image: no Docker daemon answers here (\`docker info\`: ${
      docker.error ? docker.error.code : `exit ${docker.status}`
    }); it builds where one does`,
  );
}

if (!keep) fs.rmSync(work, { recursive: true, force: true });
console.log(
  `[pack-smoke] ${failed ? `${failed} step(s) failed` : 'all steps passed'} in ${((Date.now() - t0) / 1000).toFixed(0)} s${keep ? ` (kept ${work})` : ''}`,
);
process.exit(failed ? 1 : 0);
