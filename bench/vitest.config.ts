import { lbProject } from '../vitest.shared';

export default lbProject('bench', {
  include: ['test/**/*.test.ts'],
  // Load tests and fault scripts with timeouts of their own (150 ms attempts in the short chaos runs): each file
  // runs alone, after every package's tests, so that no other test starves it of the two cores.
  fileParallelism: false,
  sequence: { groupOrder: 1 },
});
