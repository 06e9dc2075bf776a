import { defineProject } from 'vitest/config';

export default defineProject({ test: { name: 'example-fleet', include: ['test/**/*.test.ts'] } });
