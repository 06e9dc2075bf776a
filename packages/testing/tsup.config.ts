import { packageConfig } from '../../tsup.base';

// Built for publishing only (`pnpm --filter @lb/testing build:dist`, run by scripts/check-packages.mjs and `prepack`): in the
// workspace, packages import the kit's source (its `exports`), and `publishConfig` points the tarball at `dist`.
export default packageConfig({ index: 'src/index.ts', otel: 'src/otel.ts' });
