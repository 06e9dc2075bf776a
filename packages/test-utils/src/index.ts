/** Shared test helpers (private workspace package). */

export { deadAndLive, type NodeProcess, runNode, startNode } from './examples.js';
export type {
  Behaviour,
  FakeUpstream,
  FakeUpstreamOptions,
  RecordedRequest,
  Usage,
} from './fake-upstream.js';
export { startFakeUpstream } from './fake-upstream.js';
export { collectEvents, fakeKey, streamedText, timedText } from './misc.js';
export * from './providers.js';
export { startRedis, type TestRedis } from './redis.js';
export { runStrategyContract } from './strategy-contract.js';
