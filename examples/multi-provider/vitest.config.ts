import { lbProject } from '../../vitest.shared';

export default lbProject('example-multi-provider', { include: ['test/**/*.test.ts'] });
