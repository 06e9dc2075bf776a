/**
 * @lb/providers/internal — byte-level helpers `@lb/exchange` and lb-server share (UTF-8 codecs, the error-event
 * marks, usage read from a stream's bytes). UNSTABLE: not covered by semver; any minor release may change them.
 */

export { fromUtf8, utf8 } from './body.js';
export { ERROR_EVENT_MARKS, errorEventAt, usageFromBytes } from './usage.js';
