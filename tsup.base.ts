import { defineConfig, type Options } from 'tsup';

/**
 * The one build every package shares: ESM + CJS + d.ts for Node 20+, tree-shaken, with source maps.
 * A package names its entries and what differs (`platform: 'neutral'` for @lb/core).
 */
export function packageConfig(entry: Record<string, string>, extra: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    treeshake: true,
    ...extra,
  });
}
