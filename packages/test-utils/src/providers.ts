/** Test helpers for @lb/providers: a fake Anthropic upstream and the dialect contract. */
export type { AnthropicBehaviour, FakeAnthropic, FakeAnthropicRequest } from './providers-anthropic.js';
export { OVERLOADED_MID_STREAM, startFakeAnthropic } from './providers-anthropic.js';
export { runDialectContract } from './providers-contract.js';
