/** What routing needs to know about a request. Everything is optional. */
export interface RouteRequest {
  /** The exposed model name asked for. Only endpoints serving it are candidates. */
  model?: string;
  /**
   * Pins the request to the endpoint with this id: it is the only candidate, and no other is tried when it fails
   * (objects that live on one endpoint, `x-lb-endpoint`). It must serve `model` when one is named.
   */
  endpoint?: string;
  /** Only endpoints carrying all of these tags are candidates. */
  tags?: readonly string[];
  /** Correlates events and logs; generated when absent. */
  requestId?: string;
  /** The caller's signal: aborting it stops the request at once, with no further attempts. */
  signal?: AbortSignal;
  /** Overall deadline for this request in ms (default: the router's `deadlineMs`). */
  deadlineMs?: number;
  /** Failover attempts after the first (default: the router's `maxRetries`). */
  maxRetries?: number;
  /** What kind of call this is (`chat.completions`, `embeddings`, …), for guards such as provider capabilities. */
  operation?: string;
  /**
   * What the request asks of an endpoint beyond its operation (`n`: several choices, `logprobs`, …), for guards such
   * as provider capabilities (`@lb/providers`' `requestFeatures` names them). The router itself does not read it.
   */
  features?: readonly string[];
  /** Who is calling (an API key id or IP), for per-client guards. */
  client?: string;
  /** Estimated tokens, for token-budget guards. */
  estimatedTokens?: number;
}
