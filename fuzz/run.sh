#!/usr/bin/env bash
# Runs fuzz targets one after another for SECONDS each and prints one line
# per target: executions, coverage (edges), features, corpus size, result.
# Usage: fuzz/run.sh SECONDS [TARGET...]   (default: every target)
# Builds first (nightly, no sanitizer: the code is safe Rust, so a panic,
# an overflow or an assertion is what we look for; overflow checks on).
# Crashing inputs land in fuzz/artifacts/<target>/; the exit status is 1
# if any target crashed.
set -uo pipefail
cd "$(dirname "$0")"
# Its own target dir: nightly, fuzzing flags; never the workspace's (which
# scripts/test.sh exports).
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
flags=(--sanitizer none --debug-assertions -O)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
[ -d corpus ] || ./seed.sh >/dev/null
cargo +nightly fuzz build "${flags[@]}" >/dev/null 2>&1 || cargo +nightly fuzz build "${flags[@]}" || exit 2
logs=${FUZZ_LOG_DIR:-target/fuzz-logs}
mkdir -p "$logs"
status=0
printf '%-20s %12s %8s %8s %8s %s\n' target execs cov ft corpus result
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="$logs/$t.log"
  cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  stats=$(grep -E '^#[0-9]+' "$log" | tail -1)
  execs=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" || true)
  cov=$(grep -oP 'cov: \K[0-9]+' <<<"$stats" || true)
  ft=$(grep -oP 'ft: \K[0-9]+' <<<"$stats" || true)
  corp=$(grep -oP 'corp: \K[0-9]+' <<<"$stats" || true)
  if [ $rc -eq 0 ]; then result=ok; else result="CRASH (see $log)"; status=1; fi
  printf '%-20s %12s %8s %8s %8s %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done
exit $status
