import { packageConfig } from '../../tsup.base';

// shims: `import.meta.url` in the CommonJS build (the optional `@opentelemetry/api` is required lazily, see load.ts).
export default packageConfig({ index: 'src/index.ts' }, { shims: true });
