import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

/**
 * Internals live behind each package's `/internal` subpath (unstable, outside semver), not on its public entry:
 * checked on the built packages, through `require` and `import` as an app would load them.
 */
const require = createRequire(import.meta.url);

const moved = {
  '@lb/providers': ['utf8', 'fromUtf8', 'errorEventAt', 'ERROR_EVENT_MARKS', 'usageFromBytes'],
  '@lb/ratelimit': ['refill', 'windowRecord', 'windowDecision'],
  '@lb/core': ['EndpointSlot', 'fastRandom'],
} as const;

describe('internals behind /internal', () => {
  it.each(Object.entries(moved))(
    '%s: the public entry has none of them, /internal has each',
    async (pkg, names) => {
      const cjs = require(pkg);
      const esm = await import(pkg);
      const cjsInternal = require(`${pkg}/internal`);
      const esmInternal = await import(`${pkg}/internal`);
      for (const name of names) {
        expect([name, cjs[name], esm[name]]).toEqual([name, undefined, undefined]);
        expect([name, cjsInternal[name] !== undefined, esmInternal[name] !== undefined]).toEqual([
          name,
          true,
          true,
        ]);
      }
    },
  );

  it("require('@lb/providers').ERROR_EVENT_MARKS is undefined; the /internal path has it", () => {
    expect(require('@lb/providers').ERROR_EVENT_MARKS).toBeUndefined();
    expect(require('@lb/providers/internal').ERROR_EVENT_MARKS).toBeDefined();
  });

  it('@lb/server exports no demo upstreams and no mirror types at runtime', async () => {
    const server = await import('@lb/server');
    expect(Object.keys(server).sort()).not.toContain('startDemoUpstreams');
    expect(Object.keys(server).sort()).not.toContain('DEMO_PROFILES');
  });
});
