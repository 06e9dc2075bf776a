import { defineProject, type ViteUserConfig } from 'vitest/config';

/**
 * Every package's vitest project. Projects named by config file inherit nothing from the root `vitest.config.ts`, so
 * the time limits live here: a safety net for a test that hangs, never a measure of speed (tests wait on events, and
 * the suite must pass on a loaded CI machine), hence generous.
 */
export const TIMEOUTS = { testTimeout: 30_000, hookTimeout: 30_000 } as const;

export function lbProject(name: string, test: NonNullable<ViteUserConfig['test']> = {}) {
  return defineProject({
    test: { name, include: ['src/**/*.test.ts', 'test/**/*.test.ts'], ...TIMEOUTS, ...test },
  });
}
