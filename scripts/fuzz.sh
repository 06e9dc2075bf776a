#!/usr/bin/env bash
# A long run of the property tests (fast-check): the request body scanner and header handling (@lb/server), and the
# config parsers (@lb/config-env: env, JSON, YAML, TOML). The suite runs them with a few hundred to a few thousand
# cases each; this runs FUZZ_RUNS cases per property (default 100000). A failure prints its counterexample and the
# seed to replay it with. Build first (`pnpm build`).
#   FUZZ_RUNS=1000000 scripts/fuzz.sh
# The black-box run against a live lb-server is `node bench/fuzz.mjs` (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export FUZZ_RUNS=${FUZZ_RUNS:-100000}
echo "[fuzz] $FUZZ_RUNS cases per property"
npx vitest run --project server --project config-env packages/server/test/fuzz.test.ts packages/config-env/test/fuzz.test.ts
