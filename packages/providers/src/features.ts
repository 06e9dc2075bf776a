/**
 * What a request asks of an endpoint beyond its operation: the parameters some providers cannot honour, so that the
 * router keeps such requests on endpoints that can (see `providerGuard`) and, when none can, says which parameter
 * and why. Named after the request parameter, which is also the error's `param`.
 * - `n`: more than one choice (`n` > 1).
 * - `logprobs`: log probabilities (`logprobs: true` or `top_logprobs` > 0).
 * - `audio`: audio output (`modalities` with `"audio"`, or an `audio` object).
 */
export type Feature = 'n' | 'logprobs' | 'audio';

/** What each feature is, for error messages. */
export const FEATURES: Readonly<Record<Feature, string>> = Object.freeze({
  n: 'several choices (`n` > 1)',
  logprobs: 'log probabilities (`logprobs`)',
  audio: 'audio output (`modalities`: ["audio"])',
});

/**
 * The top-level body parameters {@link requestFeatures} reads: a body with none of them asks for no feature, so a
 * gateway that scans bodies rather than parsing them can skip the parse.
 */
export const FEATURE_PARAMS: readonly string[] = Object.freeze([
  'n',
  'logprobs',
  'top_logprobs',
  'modalities',
  'audio',
]);

const ONE: Record<Feature, readonly Feature[]> = {
  n: Object.freeze(['n'] as Feature[]),
  logprobs: Object.freeze(['logprobs'] as Feature[]),
  audio: Object.freeze(['audio'] as Feature[]),
};

/**
 * The features a chat or text completion body asks for, or undefined when it asks for none (the usual case:
 * nothing is allocated). Other operations ask for none.
 *
 * @example
 * requestFeatures('chat.completions', { model: 'gpt-4o', n: 3, messages }) // ['n']
 */
export function requestFeatures(
  operation: string | undefined,
  json: Record<string, unknown> | undefined,
): readonly Feature[] | undefined {
  if (json === undefined || (operation !== 'chat.completions' && operation !== 'completions'))
    return undefined;
  let out: Feature[] | undefined;
  let single: Feature | undefined;
  const add = (f: Feature) => {
    if (single === undefined) single = f;
    else (out ??= [single]).push(f);
  };
  if (typeof json.n === 'number' && json.n > 1) add('n');
  const lp = json.logprobs;
  if (
    lp === true ||
    (typeof lp === 'number' && lp > 0) ||
    (typeof json.top_logprobs === 'number' && json.top_logprobs > 0)
  )
    add('logprobs');
  if (
    (Array.isArray(json.modalities) && json.modalities.includes('audio')) ||
    (json.audio !== null && typeof json.audio === 'object')
  )
    add('audio');
  return out ?? (single === undefined ? undefined : ONE[single]);
}
