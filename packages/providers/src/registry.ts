import { ConfigError } from '@lb/core';
import { anthropicDialect } from './dialects/anthropic.js';
import { azureDialect } from './dialects/azure.js';
import { openaiDialect } from './dialects/openai.js';
import { ProviderError } from './errors.js';
import type { Dialect } from './types.js';

const registry = new Map<string, Dialect>([
  [openaiDialect.name, openaiDialect],
  [azureDialect.name, azureDialect],
  [anthropicDialect.name, anthropicDialect],
]);

/** Names that reach the OpenAI dialect: every OpenAI-compatible server speaks it. */
const ALIASES: Record<string, string> = {
  'openai-compatible': 'openai',
  'azure-openai': 'azure',
  claude: 'anthropic',
};

/**
 * The dialect registered under `name` (an endpoint's `provider`). Throws a {@link ProviderError} naming the known
 * dialects for unknown names.
 *
 * @example
 * const dialect = getDialect(endpoint.provider);
 * const upstream = dialect.prepare({ endpoint, operation: 'chat.completions', ... });
 */
export function getDialect(name: string): Dialect {
  const d = registry.get(name) ?? registry.get(ALIASES[name] as string);
  if (d) return d;
  throw new ProviderError(
    `Unknown provider ${JSON.stringify(name)}: known providers are ${dialectNames()
      .map((n) => JSON.stringify(n))
      .join(', ')} (register others with registerDialect)`,
    { status: 500, code: 'unknown_provider', type: 'invalid_config', provider: String(name) },
  );
}

/** The dialect for `name`, or undefined (no throw: for hot paths and guards). */
export function findDialect(name: string): Dialect | undefined {
  return registry.get(name) ?? registry.get(ALIASES[name] as string);
}

/**
 * Registers (or replaces) a dialect under its `name`, so endpoints with `provider: name` use it. Returns a function
 * that restores what was registered before.
 *
 * @example
 * const off = registerDialect({ name: 'mistral', supports: () => true, prepare: (r) => openaiDialect.prepare(r) });
 */
export function registerDialect(dialect: Dialect): () => void {
  if (!dialect || typeof dialect !== 'object') {
    throw new ConfigError(`registerDialect: expected a dialect object, received ${String(dialect)}`);
  }
  if (typeof dialect.name !== 'string' || dialect.name.length === 0) {
    throw new ConfigError(
      `registerDialect: dialect.name must be a non-empty string, received ${JSON.stringify(dialect.name)}`,
    );
  }
  if (typeof dialect.supports !== 'function' || typeof dialect.prepare !== 'function') {
    throw new ConfigError(
      `registerDialect(${JSON.stringify(dialect.name)}): supports and prepare must be functions`,
    );
  }
  const previous = registry.get(dialect.name);
  registry.set(dialect.name, dialect);
  return () => {
    if (registry.get(dialect.name) !== dialect) return;
    if (previous) registry.set(dialect.name, previous);
    else registry.delete(dialect.name);
  };
}

/** Names of every registered dialect. */
export function dialectNames(): string[] {
  return [...registry.keys()];
}
