#!/usr/bin/env bash
# CI smoke of the fuzz targets: builds every target (a change that breaks
# a parser's fuzz harness fails CI) and runs each for a few seconds from
# the seed corpus (FUZZ_SMOKE_SECONDS, default 8). Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
./seed.sh >/dev/null
nice ./run.sh "${FUZZ_SMOKE_SECONDS:-8}"
echo "fuzz smoke: $(( $(date +%s) - start )) s"
