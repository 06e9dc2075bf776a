#!/usr/bin/env node
// Runs every package's tests once per supported runtime (the machine's Node, then Node 24 from the npm registry's
// `node` package, installed into .cache/node24), and prints the total over all of them as the last line:
//   N passed, N failed[, N skipped]
// Usage: node scripts/test-all.mjs [--only-current] [vitest filters...]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cache = path.join(root, '.cache');
fs.mkdirSync(cache, { recursive: true });
const args = process.argv.slice(2);
const onlyCurrent = args.includes('--only-current') || process.env.LB_TEST_RUNTIMES === 'current';
const filters = args.filter((a) => a !== '--only-current');
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');

function node24() {
  const dir = path.join(cache, 'node24');
  const candidates = [
    path.join(dir, 'node_modules', 'node', 'bin', 'node'),
    path.join(dir, 'node_modules', `node-${process.platform}-${process.arch}`, 'bin', 'node'),
  ];
  const ok = (bin) => {
    try {
      return (
        fs.existsSync(bin) && execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim().startsWith('v24.')
      );
    } catch {
      return false;
    }
  };
  for (const c of candidates) if (ok(c)) return c;
  fs.mkdirSync(dir, { recursive: true });
  if (!fs.existsSync(path.join(dir, 'package.json')))
    fs.writeFileSync(path.join(dir, 'package.json'), '{"private":true}\n');
  console.log('[test-all] installing Node 24 from the npm registry into .cache/node24 ...');
  // The `node` package picks the binary package for this platform in its preinstall script; install that
  // binary package directly, which needs no install script.
  const r = spawnSync(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      '--prefix',
      dir,
      `node-${process.platform}-${process.arch}@24`,
    ],
    {
      stdio: 'inherit',
    },
  );
  if (r.status !== 0) throw new Error('could not install Node 24 from the npm registry');
  for (const c of candidates) if (ok(c)) return c;
  throw new Error('Node 24 binary not found after install');
}

function run(label, nodeBin) {
  const out = path.join(cache, `vitest-${label}.json`);
  fs.rmSync(out, { force: true });
  console.log(`\n[test-all] ${label}: ${execFileSync(nodeBin, ['--version'], { encoding: 'utf8' }).trim()}`);
  const r = spawnSync(
    nodeBin,
    [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...filters],
    {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, LB_TEST_RUNTIME: label, FORCE_COLOR: process.env.FORCE_COLOR ?? '0' },
    },
  );
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  if (fs.existsSync(out)) {
    const j = JSON.parse(fs.readFileSync(out, 'utf8'));
    passed = j.numPassedTests ?? 0;
    failed = j.numFailedTests ?? 0;
    skipped = (j.numPendingTests ?? 0) + (j.numTodoTests ?? 0);
    // Suites that failed to load count as failures too.
    for (const f of j.testResults ?? [])
      if (f.status === 'failed' && (f.assertionResults ?? []).length === 0) failed++;
  }
  if (r.status !== 0 && failed === 0) failed = 1;
  console.log(
    `[test-all] ${label}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`,
  );
  return { passed, failed, skipped };
}

const totals = { passed: 0, failed: 0, skipped: 0 };
const add = (t) => {
  totals.passed += t.passed;
  totals.failed += t.failed;
  totals.skipped += t.skipped;
};
add(run(`node${process.versions.node.split('.')[0]}`, process.execPath));
if (!onlyCurrent && !process.versions.node.startsWith('24.')) {
  let bin;
  try {
    bin = node24();
  } catch (e) {
    console.error(`[test-all] ${e.message}`);
    totals.failed++;
  }
  if (bin) add(run('node24', bin));
}
console.log(
  `${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`,
);
process.exit(totals.failed ? 1 : 0);
