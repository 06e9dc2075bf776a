import { defineConfig } from 'vitest/config';

// One run over every package: `pnpm test` (via scripts/test-all.mjs) and `pnpm test:quick` use this. Each project's
// settings (time limits included) are in vitest.shared.ts: a project named by its config file inherits none of these.
export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', 'examples/*/vitest.config.ts', 'bench/vitest.config.ts'],
    maxWorkers: 2,
  },
});
