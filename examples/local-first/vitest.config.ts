import { lbProject } from '../../vitest.shared';

export default lbProject('example-local-first', { include: ['test/**/*.test.ts'] });
