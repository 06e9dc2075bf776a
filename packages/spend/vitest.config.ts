import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'spend',
    include: ['test/**/*.test.ts'],
  },
});
