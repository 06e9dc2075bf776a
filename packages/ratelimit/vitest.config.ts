import { lbProject } from '../../vitest.shared';

export default lbProject('ratelimit');
