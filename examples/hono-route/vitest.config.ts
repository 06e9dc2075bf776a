import { defineProject } from 'vitest/config';

export default defineProject({ test: { name: 'example-hono-route', include: ['test/**/*.test.ts'] } });
