import { lbProject } from '../../vitest.shared';

export default lbProject('example-plugin-strategy', { include: ['test/**/*.test.{ts,mjs}'] });
