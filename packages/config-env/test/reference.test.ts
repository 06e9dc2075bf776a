// docs/configuration.md is generated from this package's schema and env tables (scripts/config-reference.mjs): it
// cannot drift from them, because this test fails when the committed page differs from what the script writes now.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { coverage, PAGE, render, schemaPaths } from '../../../scripts/config-reference.mjs';
import * as ce from '../src/index.js';

describe('the configuration reference (docs/configuration.md)', () => {
  it('has a meaning for every file key the schema has, and none for a key it lost', () => {
    expect(coverage(ce)).toEqual({ missing: [], stale: [] });
  });

  it('lists every file key and every environment variable, with defaults read from the compiled config', () => {
    const page = render(ce);
    for (const [p] of schemaPaths(ce.configJsonSchema())) expect(page).toContain(`| \`${p}\` |`);
    for (const v of ce.ENV_VARS) expect(page).toContain(`\`${v}\``);
    expect(page).toContain('| `plugins` | list | `LB_PLUGINS` |');
    expect(page).toContain(`| \`server.port\` | integer | \`PORT\` | ${ce.SERVER_DEFAULTS.port} |`);
  });

  it('is the committed page (regenerate: node scripts/config-reference.mjs)', () => {
    expect(readFileSync(PAGE, 'utf8')).toBe(render(ce));
  });
});
