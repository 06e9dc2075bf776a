/**
 * @lb/testing — the test kit for lb: the contract suites that every implementation of a replaceable part runs
 * (Strategy, Guard, Store, Dialect), and controllable fake upstreams on 127.0.0.1 (OpenAI-compatible and Anthropic)
 * for integration tests. The suites use vitest's `describe`/`it`/`expect`: call them at a test file's top level.
 */

export { runDialectContract } from './dialect-contract.js';
export { deadAndLive, type NodeProcess, runNode, startNode } from './examples.js';
export type {
  Behaviour,
  FakeUpstream,
  FakeUpstreamOptions,
  RecordedRequest,
  Usage as FakeUpstreamUsage,
} from './fake-upstream.js';
export { startFakeUpstream } from './fake-upstream.js';
export { fuzzRuns, fuzzTimeout } from './fuzz.js';
export type { GuardContractContext, GuardContractOptions } from './guard-contract.js';
export { runGuardContract } from './guard-contract.js';
export { collectEvents, fakeKey, streamedText, timedText } from './misc.js';
export { nodeStartMs, pacedTimeout } from './pace.js';
export type { AnthropicBehaviour, FakeAnthropic, FakeAnthropicRequest } from './providers-anthropic.js';
export { OVERLOADED_MID_STREAM, startFakeAnthropic } from './providers-anthropic.js';
export { startRedis, type TestRedis } from './redis.js';
export { runStoreContract } from './store-contract.js';
export { runStrategyContract } from './strategy-contract.js';
export { type AnsweredCall, spendsSent, type Watched, watchCalls } from './watch.js';
