import { lbProject } from '../../vitest.shared';

export default lbProject('example-hono-route', { include: ['test/**/*.test.ts'] });
