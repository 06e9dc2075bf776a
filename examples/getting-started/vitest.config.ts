import { defineProject } from 'vitest/config';

export default defineProject({ test: { name: 'example-getting-started', include: ['test/**/*.test.ts'] } });
