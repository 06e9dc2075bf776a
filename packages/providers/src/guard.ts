import type { Guard, Router, Veto } from '@lb/core';
import { ProviderError } from './errors.js';
import { FEATURES, type Feature } from './features.js';
import { findDialect } from './registry.js';
import type { Dialect } from './types.js';

/** The first of `features` the dialect lacks, if any. */
function lacked(d: Dialect, features: readonly string[] | undefined): string | undefined {
  const lacks = d.lacks;
  if (features === undefined || lacks === undefined) return undefined;
  for (let i = 0; i < features.length; i++) if (lacks.includes(features[i])) return features[i];
  return undefined;
}

/**
 * A router guard that keeps requests away from endpoints whose provider cannot serve them: a request whose
 * `operation` is `embeddings` never reaches an Anthropic endpoint, nor one asking for `n` > 1 (its `features`, see
 * `requestFeatures`). Requests without an `operation` pass. Endpoints naming an unknown provider are vetoed for
 * every operation. Vetoes are cached: admitting allocates nothing.
 *
 * @example
 * router.addGuard(providerGuard());
 * await router.execute({ model: 'smart', operation: operationOf('POST', '/embeddings') }, attempt);
 */
export function providerGuard(): Guard {
  const vetoes = new Map<string, Map<string, Veto>>();
  const veto = (provider: string, operation: string, reason: string): Veto => {
    let byOp = vetoes.get(provider);
    if (!byOp) vetoes.set(provider, (byOp = new Map()));
    let v = byOp.get(operation);
    if (!v) byOp.set(operation, (v = Object.freeze({ reason })));
    return v;
  };
  return {
    name: 'provider',
    admit(endpoint, request) {
      const op = request.operation;
      if (op === undefined) return true;
      const d = findDialect(endpoint.provider);
      if (!d) return veto(endpoint.provider, '', `unknown provider ${endpoint.provider}`);
      if (!d.supports(op))
        return veto(endpoint.provider, op, `provider ${endpoint.provider} does not support ${op}`);
      const f = lacked(d, request.features);
      return f === undefined
        ? true
        : veto(endpoint.provider, `${op}+${f}`, `provider ${endpoint.provider} cannot honour ${f}`);
    },
    describe(endpoint) {
      return { provider: endpoint.provider, known: findDialect(endpoint.provider) !== undefined };
    },
  };
}

/**
 * Why no endpoint of the pool can ever serve a route, or undefined when at least one can (whatever its health:
 * temporary unavailability is the router's business, answered 503/429). Answers:
 * - 404 `model_not_found` when no endpoint (nor model group) serves `model`;
 * - 400 `unsupported_operation` when endpoints serve it but none of their providers supports `operation`;
 * - 400 `unsupported_parameter` (with `param`) when some support the operation but none honours one of the
 *   request's `features` (`n` > 1 on a pool of Anthropic endpoints).
 *
 * The result is a {@link ProviderError}: `status`, `message`, `code` and `toOpenAIError()` for the body.
 *
 * @example
 * const problem = explainUnservable(router, { operation: 'embeddings', model: 'claude-sonnet' });
 * if (problem) return reply(problem.status, problem.toOpenAIError());
 */
export function explainUnservable(
  router: Pick<Router, 'endpoints' | 'config'>,
  route: { operation?: string; model?: string; features?: readonly string[] },
): ProviderError | undefined {
  const { operation, model, features } = route;
  const endpoints = router.endpoints;
  const group = model === undefined ? undefined : router.config.models?.[model];
  let serving = 0;
  let providers: string[] | undefined;
  // Providers that support the operation but lack a feature the request asks for (the first one each lacks).
  let short: string[] | undefined;
  let missing: string | undefined;
  const consider = (provider: string): boolean => {
    serving++;
    if (operation === undefined) return true;
    const d: Dialect | undefined = findDialect(provider);
    if (d?.supports(operation)) {
      const f = lacked(d, features);
      if (f === undefined) return true;
      missing ??= f;
      if (!(short ??= []).includes(provider)) short.push(provider);
      return false;
    }
    if (!providers) providers = [];
    if (!providers.includes(provider)) providers.push(provider);
    return false;
  };
  if (group) {
    for (const b of group.backends) {
      const ep = endpoints.find((e) => e.id === b.endpoint);
      if (ep && consider(ep.provider)) return undefined;
    }
  } else {
    for (const ep of endpoints) if (ep.serves(model) && consider(ep.provider)) return undefined;
  }
  if (serving === 0) {
    if (model === undefined) return undefined;
    return new ProviderError(`The model \`${model}\` does not exist or you do not have access to it.`, {
      status: 404,
      code: 'model_not_found',
    });
  }
  const what = model === undefined ? 'this gateway' : `model \`${model}\``;
  if (missing !== undefined) {
    const list = short!.join(', ');
    return new ProviderError(
      `No endpoint serving ${what} can honour ${FEATURES[missing as Feature] ?? missing}: its provider${short!.length > 1 ? 's' : ''} (${list}) cannot. Drop the parameter or route to an endpoint that supports it.`,
      { status: 400, code: 'unsupported_parameter', provider: short![0], param: missing },
    );
  }
  return new ProviderError(
    `No endpoint serving ${what} supports ${operation}: its provider${providers!.length > 1 ? 's' : ''} (${providers!.join(', ')}) cannot serve this operation.`,
    { status: 400, code: 'unsupported_operation', provider: providers![0] },
  );
}
