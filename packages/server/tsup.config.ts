import { packageConfig } from '../../tsup.base';

// shims: `import.meta.url` in the CommonJS build (pino is required lazily, see observability/logger.ts).
// `config-loader`: the module the config loader's child process runs (see src/config.ts), its own file in dist.
export default packageConfig(
  { index: 'src/index.ts', cli: 'src/cli.ts', 'config-loader': 'src/config-loader.ts' },
  { shims: true },
);
