/** Shared test helpers (private workspace package). */

export type {
  Behaviour,
  FakeUpstream,
  FakeUpstreamOptions,
  RecordedRequest,
  Usage,
} from './fake-upstream.js';
export { startFakeUpstream } from './fake-upstream.js';
export { fuzzRuns, fuzzTimeout } from './fuzz.js';
export { collectEvents, fakeKey, streamedText, timedText } from './misc.js';
export { nodeStartMs, pacedTimeout } from './pace.js';
export * from './providers.js';
export { startRedis, type TestRedis } from './redis.js';
export { runStrategyContract } from './strategy-contract.js';
export { type AnsweredCall, spendsSent, type Watched, watchCalls } from './watch.js';
