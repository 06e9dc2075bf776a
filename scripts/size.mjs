#!/usr/bin/env node
// What `@lb/core` costs a user's bundle: its built ESM entry bundled with its one dependency (eventemitter3),
// minified, gzipped, measured with the esbuild that tsup already brings. Fails when over the budget.
//   node scripts/size.mjs            # prints "@lb/core: N B min, N B min+gzip (budget N B)"
//   node scripts/size.mjs --json     # the same as JSON
// Run by `pnpm check:packages` (after a build). The README states the figure this prints.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Bytes, minified and gzipped (level 9). Raise only with a reason in the commit message. */
export const BUDGETS = { '@lb/core': 13_000 };

const esbuild = createRequire(createRequire(path.join(root, 'package.json')).resolve('tsup'))('esbuild');

/** Bundles a built package's ESM entry (dependencies included), minified; returns its sizes in bytes. */
export async function measure(dir) {
  const entry = path.join(root, dir, 'dist', 'index.js');
  if (!fs.existsSync(entry)) throw new Error(`${entry} missing: build first (pnpm build)`);
  const out = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const code = out.outputFiles[0].contents;
  return { min: code.length, gzip: gzipSync(code, { level: 9 }).length };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { min, gzip } = await measure('packages/core');
  const budget = BUDGETS['@lb/core'];
  const result = { name: '@lb/core', min, gzip, budget };
  if (process.argv.includes('--json')) console.log(JSON.stringify(result));
  else
    console.log(
      `${gzip <= budget ? 'ok  ' : 'FAIL'} @lb/core: ${min} B min, ${gzip} B min+gzip (budget ${budget} B)`,
    );
  process.exit(gzip <= budget ? 0 : 1);
}
