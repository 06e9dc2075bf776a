import { defineProject } from 'vitest/config';

export default defineProject({ test: { name: 'example-multi-provider', include: ['test/**/*.test.ts'] } });
