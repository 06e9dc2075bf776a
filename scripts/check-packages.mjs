#!/usr/bin/env node
// Release hygiene for every publishable package: publint --strict (package.json, exports, files) and
// are-the-types-wrong on the tarball as pnpm packs it (`publishConfig` applied, `prepack` run: @lb/testing is used
// from source in the workspace and published built), so ESM + CJS types resolve under node16 and bundlers; then
// @lb/core's bundled, minified, gzipped size against its budget (scripts/size.mjs).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
let failed = 0;
for (const dir of fs.readdirSync(path.join(root, 'packages')).sort()) {
  const cwd = path.join(root, 'packages', dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(cwd, 'package.json'), 'utf8'));
  if (pkg.private) continue;
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-pack-'));
  const packed = spawnSync(bin('pnpm'), ['pack', '--pack-destination', out], { cwd, encoding: 'utf8' });
  const tgz = fs.readdirSync(out).find((f) => f.endsWith('.tgz'));
  if (packed.status !== 0 || !tgz) {
    failed++;
    console.log(`FAIL ${pkg.name}: pnpm pack\n${packed.stdout}${packed.stderr}`);
    continue;
  }
  for (const [cmd, args] of [
    [bin('publint'), ['run', path.join(out, tgz), '--strict']],
    [bin('attw'), [path.join(out, tgz), '--profile', 'node16', '--format', 'ascii']],
  ]) {
    const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
    const ok = r.status === 0;
    if (!ok) failed++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${pkg.name}: ${path.basename(cmd)}`);
    if (!ok) console.log(`${r.stdout}${r.stderr}`);
  }
}
const size = spawnSync(process.execPath, [path.join(root, 'scripts', 'size.mjs')], { encoding: 'utf8' });
process.stdout.write(size.stdout + size.stderr);
if (size.status !== 0) failed++;
process.exit(failed ? 1 : 0);
