#!/usr/bin/env bash
# The whole Foundation benchmark: import (build, generate, import, compact)
# then queries, into bench/runs/<YYYY-MM-DD>-<hostname>/ (see bench/common.sh
# for the knobs). About 5 minutes on 2 cores once built.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/import.sh
bench/query.sh
