import { packageConfig } from '../../tsup.base';

// No shared chunks: `dist/index.js` stays one self-contained file (its only import is eventemitter3); the small
// `internal` entry carries its own copy (EndpointSlot's allocator is global, so copies share slots).
export default packageConfig(
  { index: 'src/index.ts', internal: 'src/internal.ts' },
  { platform: 'neutral', splitting: false },
);
