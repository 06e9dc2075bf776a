import { defineConfig } from 'vitest/config';

// One run over every package: `pnpm test` (via scripts/test-all.mjs) and `pnpm test:quick` use this.
export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', 'examples/*/vitest.config.ts', 'bench/vitest.config.ts'],
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
