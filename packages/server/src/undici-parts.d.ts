// undici is pinned exactly in package.json: these are internal module paths, checked on every upgrade.
// Types of the undici modules the server imports directly, rather than the package index (which also loads
// fetch, WebSocket, EventSource, the cache stores and mocks: ~11 MB of RSS an idle proxy does not need).
declare module 'undici/lib/dispatcher/agent.js' {
  import { Agent } from 'undici';
  export = Agent;
}

declare module 'undici/lib/core/util.js' {
  export function parseHeaders(
    headers: (Buffer | string)[],
    obj?: Record<string, string | string[]>,
  ): Record<string, string | string[]>;
}

declare module 'undici/lib/util/timers.js' {
  /** A Node.js `Timeout` (delays up to a second) or undici's coarse `FastTimer`. */
  export type Timer = { readonly __undiciTimer?: never };
  export function setTimeout<T>(callback: (arg: T) => void, delay: number, arg: T): Timer;
  export function clearTimeout(timer: Timer): void;
}

declare module 'undici/lib/core/connect.js' {
  /** undici's connector factory (`connect` options as `Client` takes them). */
  function buildConnector(options: Record<string, unknown>): unknown;
  export = buildConnector;
}
