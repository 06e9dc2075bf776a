import { lbProject } from '../../vitest.shared';

export default lbProject('example-other-sdks', { include: ['test/**/*.test.ts'] });
