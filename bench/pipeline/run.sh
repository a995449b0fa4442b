#!/usr/bin/env bash
# Pipeline benchmark (issue: ingest pipeline). Measures, in one run:
#  - import throughput with 90% repeats and with none, against `cat` of the same file;
#  - store writes per observation (the de-duplication cache's effect);
#  - peak RSS of the import against the configured cache bound (pipeline.dedup.max_bytes):
#    a 1 MiB bound gives the base (RocksDB, batches in flight); the target is
#    RSS <= base + 1.1 x bound;
#  - the criterion bench of filter + dedup alone (observations/s per core).
# Usage: bench/pipeline/run.sh   (results in bench/runs/<date>-<host>/pipeline/;
#        BENCH_SKIP_CRITERION=1 skips the criterion part, LINES sets the size)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/dnsrecall-target-release}"
cargo build --release --locked -p dnsrecall >/dev/null
bin="$CARGO_TARGET_DIR/release/dnsrecall"
out="bench/runs/$(date +%F)-$(hostname)/pipeline"
data="$out/data"
mkdir -p "$data"
lines=${LINES:-2000000}
[ -s "$data/repeats.ndjson" ] || python3 bench/pipeline/gen.py "$lines" $((lines / 10)) "$data/repeats.ndjson"
[ -s "$data/distinct.ndjson" ] || python3 bench/pipeline/gen.py "$lines" "$lines" "$data/distinct.ndjson"

summary="$out/summary.md"
{
  echo "# Pipeline benchmark, $(date -u +%FT%TZ), $(nproc) cores"
  echo
  echo "| input | cache bound | lines/s | vs cat | distinct writes | writes/observation | peak RSS | RSS - base | within base + 1.1 x bound |"
  echo "|---|---|---|---|---|---|---|---|---|"
} > "$summary"
for input in repeats distinct; do
  file="$data/$input.ndjson"
  start=$(date +%s.%N); cat "$file" > /dev/null; end=$(date +%s.%N)
  cat_rate=$(python3 -c "print(int($lines/($end-$start)))")
  base_kib=0
  for bound_mib in 1 32 256; do
    dir=$(mktemp -d)
    printf '[pipeline.dedup]\nmax_bytes = %d\nmax_entries = 100000000\n' $((bound_mib << 20)) > "$dir/c.toml"
    /usr/bin/time -v "$bin" --config "$dir/c.toml" --data-dir "$dir/data" import --json-summary "$file" \
      > "$out/$input-$bound_mib.json" 2> "$out/$input-$bound_mib.time"
    rss_kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out/$input-$bound_mib.time")
    [ "$bound_mib" = 1 ] && base_kib=$rss_kib
    python3 - "$out/$input-$bound_mib.json" "$rss_kib" "$input" "$bound_mib" "$cat_rate" "$base_kib" >> "$summary" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
rss_kib, bound_mib, base_kib = int(sys.argv[2]), int(sys.argv[4]), int(sys.argv[6])
rate = summary["lines"] / summary["seconds"]
over = (rss_kib - base_kib) / 1024
within = "base" if bound_mib == 1 else ("yes" if over <= 1.1 * bound_mib else "no")
print(f"| {sys.argv[3]} | {bound_mib} MiB | {rate:,.0f} | {rate/int(sys.argv[5]):.3f} | {summary['distinct_writes']:,} | "
      f"{summary['distinct_writes']/summary['records']:.3f} | {rss_kib/1024:.0f} MiB | {over:+.0f} MiB | {within} |")
PY
    rm -rf "$dir"
  done
done
if [ "${BENCH_SKIP_CRITERION:-0}" = 1 ]; then cat "$summary"; exit 0; fi
echo >> "$summary"
echo "Criterion (filter + dedup only, one core):" >> "$summary"
# Its own target dir: building one crate's bench with its own feature set in
# the release dir would make the next `-p dnsrecall` build rebuild RocksDB.
CARGO_TARGET_DIR="$CARGO_TARGET_DIR-criterion" \
  cargo bench -p dnsrecall-pipeline --bench pipeline -- --warm-up-time 1 --measurement-time 5 2>/dev/null \
  | grep -E "^[a-z0-9_/ ]+$|thrpt" | sed 's/^/    /' >> "$summary"
cat "$summary"
