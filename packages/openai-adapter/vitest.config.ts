import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'openai-adapter',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
