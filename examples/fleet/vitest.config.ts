import { lbProject } from '../../vitest.shared';

export default lbProject('example-fleet', { include: ['test/**/*.test.ts'] });
