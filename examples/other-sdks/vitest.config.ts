import { defineProject } from 'vitest/config';

export default defineProject({ test: { name: 'example-other-sdks', include: ['test/**/*.test.ts'] } });
