import { defineProject } from 'vitest/config';

export default defineProject({ test: { name: 'example-local-first', include: ['test/**/*.test.ts'] } });
