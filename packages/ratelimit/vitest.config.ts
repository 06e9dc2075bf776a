import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'ratelimit',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
