import { packageConfig } from '../../tsup.base';

// shims: `import.meta.url` in the CommonJS build (cockatiel is required, see internal/cockatiel.ts).
export default packageConfig({ index: 'src/index.ts' }, { shims: true });
