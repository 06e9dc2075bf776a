import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'config-env',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
