import { packageConfig } from '../../tsup.base';

// shims: `import.meta.url` in the CommonJS build (pino is required lazily, see observability/logger.ts).
export default packageConfig({ index: 'src/index.ts', cli: 'src/cli.ts' }, { shims: true });
