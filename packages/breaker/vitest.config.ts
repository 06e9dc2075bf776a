import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'breaker',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
