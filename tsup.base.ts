import { defineConfig, type Options } from 'tsup';

/**
 * The one build every package shares: ESM + CJS + d.ts for Node 20+, tree-shaken. No source maps: the output is
 * unminified, readable JS, and the maps (with their embedded sources) were most of every tarball.
 * A package names its entries and what differs (`platform: 'neutral'` for @lb/core).
 */
export function packageConfig(entry: Record<string, string>, extra: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: false,
    target: 'node20',
    platform: 'node',
    treeshake: true,
    ...extra,
  });
}
