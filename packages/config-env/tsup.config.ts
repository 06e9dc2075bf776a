import { packageConfig } from '../../tsup.base';

export default packageConfig(
  // `defaults`: the server's defaults alone (no parser, no schema), for `@lb/server` at run time.
  { index: 'src/index.ts', defaults: 'src/defaults.ts' },
  { shims: true },
);
