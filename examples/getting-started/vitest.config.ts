import { lbProject } from '../../vitest.shared';

export default lbProject('example-getting-started', { include: ['test/**/*.test.ts'] });
