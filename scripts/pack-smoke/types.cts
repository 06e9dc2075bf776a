// Type-checked under `node16` as CommonJS: the `require` conditions' .d.cts types resolve.
import core = require('@lb/core');
import adapter = require('@lb/openai-adapter');

const router: core.Router = core.createRouter({ endpoints: [{ id: 'a', url: 'http://127.0.0.1:1/v1' }] });
export const client: adapter.LoadBalancedOpenAI = new adapter.LoadBalancedOpenAI({ router });
