import { askForUsage } from '@lb/exchange';

export { COST_HEADER, costText } from '@lb/exchange';

import type { ReadRequest } from './request.js';

/**
 * Asks the upstream for a streaming chat or completions call's usage when the caller did not (`@lb/exchange`'s
 * `askForUsage`, the same as lb-server): rewrites `req.body` and `req.json`; true when it did.
 */
export function askUsage(req: ReadRequest, operation: string): boolean {
  if (req.body === undefined || (operation !== 'chat.completions' && operation !== 'completions'))
    return false;
  const asked = askForUsage(req.body, req.json);
  if (asked === undefined) return false;
  req.body = asked.body;
  req.json = asked.json ?? {
    ...req.json,
    stream_options: { ...req.json?.stream_options, include_usage: true },
  };
  return true;
}
