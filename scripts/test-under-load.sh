#!/usr/bin/env bash
# Runs the whole suite (this machine's Node only) while stress-ng keeps both cores busy, as a shared CI machine
# does: the suite must hold there (tests wait on events, take their time limits from a measured pace or fake
# timers, and never assert the machine's speed). Prints the suite's last line ("N passed, N failed[, N skipped]")
# last and exits with its status.
#   scripts/test-under-load.sh [vitest filters...]      env: LOAD_CPUS (default 2), LOAD_METHOD (default: stress-ng's)
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v stress-ng >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng) >/dev/null 2>&1 \
      || { echo "[load] could not install stress-ng from Debian"; exit 1; }
  else
    echo "[load] stress-ng is missing and apt-get is not available"; exit 1
  fi
fi

cpus=${LOAD_CPUS:-2}
method=()
[ -n "${LOAD_METHOD:-}" ] && method=(--cpu-method "$LOAD_METHOD")
# No --timeout: it runs until the suite is done, and is stopped (with its workers) whatever way this script ends.
stress-ng --cpu "$cpus" "${method[@]}" --quiet &
load=$!
trap 'kill "$load" 2>/dev/null; wait "$load" 2>/dev/null' EXIT INT TERM
echo "[load] stress-ng --cpu $cpus running (pid $load); suite starts"

node scripts/test-all.mjs --only-current "$@"
