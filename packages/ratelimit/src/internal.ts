/**
 * @lb/ratelimit/internal — the token-bucket and window arithmetic every store shares (`MemoryStore`, `RedisStore`'s
 * local view, `@lb/spend`), for authors of a `Store` who accept churn. UNSTABLE: not covered by semver.
 */

export { refill, windowDecision, windowRecord } from './store.js';
