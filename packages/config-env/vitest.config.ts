import { lbProject } from '../../vitest.shared';

export default lbProject('config-env');
