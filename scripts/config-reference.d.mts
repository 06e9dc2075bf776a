// Types of scripts/config-reference.mjs, for the test that keeps docs/configuration.md current.
type ConfigEnv = typeof import('@lb/config-env');
export declare function schemaPaths(schema: Record<string, unknown>): [string, string][];
export declare function coverage(ce: ConfigEnv): { missing: string[]; stale: string[] };
export declare function render(ce: ConfigEnv): string;
export declare const PAGE: string;
