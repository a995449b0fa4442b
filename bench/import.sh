#!/usr/bin/env bash
# Foundation benchmark, part 1: import throughput and bytes per record.
#
#   bench/import.sh            # build, generate (cached), import, compact, measure
#
# In one run, against the same generated COF file:
#   1. reference: `cat FILE > /dev/null` and `wc -l FILE` (page cache warm,
#      median of 3), the rate at which the file can merely be read;
#   2. `dnsrecall --data-dir STORE import --format cof --json-summary FILE`
#      under `/usr/bin/time -v` into an empty store: lines/s (wall clock of
#      the whole process, open to close), CPU user/sys, peak RSS; the ratio
#      of its rate to the reference rates;
#   3. on-disk size (`du -sb` of the data directory, and live SST bytes) after
#      the import, after a `dnsrecall serve` start/stop, and after
#      `dnsrecall compact`, divided by the distinct records
#      (`dnsrecall export | wc -l`, checked against the generator's count).
# Raw outputs and summary-import.md go to the run folder (see common.sh);
# summary.md is reassembled at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
trap 'stop_server; stop_load_monitor' EXIT

describe_machine
start_load_monitor import
build_release
generate_data

lines=$(json_field "$DATA_DIR/meta.json" lines)
file_bytes=$(stat -c %s "$COF_FILE")
generated_records=$(json_field "$DATA_DIR/meta.json" distinct_records)

# --- 1. reference reads --------------------------------------------------
log "reference: cat and wc -l of $COF_FILE ($file_bytes bytes, warm cache)"
cat "$COF_FILE" >/dev/null # warm the page cache
median_of_3() {
  local samples=() start end
  for _ in 1 2 3; do
    start=$(now_ns)
    "$@" >/dev/null
    end=$(now_ns)
    samples+=("$(seconds_between "$start" "$end")")
  done
  printf '%s\n' "${samples[@]}" | sort -n | sed -n 2p
}
cat_seconds=$(median_of_3 cat "$COF_FILE")
wc_seconds=$(median_of_3 wc -l "$COF_FILE")
{
  echo "cat $COF_FILE > /dev/null: median of 3 = $cat_seconds s"
  echo "wc -l $COF_FILE: median of 3 = $wc_seconds s"
} >"$RUN_DIR/reference-read.txt"

# --- 2. import -------------------------------------------------------------
log "import into an empty store"
rm -rf "$STORE_DIR"
start=$(now_ns)
/usr/bin/time -v -o "$RUN_DIR/import.time.txt" \
  "$BIN" --data-dir "$STORE_DIR" import --format cof --json-summary "$COF_FILE" \
  >"$RUN_DIR/import.json" 2>"$RUN_DIR/import.stderr"
end=$(now_ns)
import_seconds=$(seconds_between "$start" "$end")
import_inner_seconds=$(json_field "$RUN_DIR/import.json" seconds | awk '{ printf "%.3f", $1 }')
imported_lines=$(json_field "$RUN_DIR/import.json" lines)
rejected=$(json_field "$RUN_DIR/import.json" rejected_total)
time_field() { awk -F': ' -v key="$1" '$1 ~ key { print $2 }' "$RUN_DIR/import.time.txt" | head -1; }
import_user=$(time_field 'User time')
import_sys=$(time_field 'System time')
import_rss_kib=$(time_field 'Maximum resident set size')
import_cpu_pct=$(time_field 'Percent of CPU')

# --- 3. bytes per record ------------------------------------------------------
sst_bytes() { find "$STORE_DIR" -maxdepth 1 -name '*.sst' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
size_line() { echo "$1: du -sb $(du -sb "$STORE_DIR" | cut -f1) bytes, live SST $(sst_bytes) bytes, $(find "$STORE_DIR" -maxdepth 1 -name '*.sst' | wc -l) SST files"; }
du_after_import=$(du -sb "$STORE_DIR" | cut -f1)
sst_after_import=$(sst_bytes)
size_line "after import" >"$RUN_DIR/disk.txt"

log "serve start/stop (lets RocksDB settle before the explicit compaction)"
start_server "$RUN_DIR/serve-settle.log"
curl -sf "http://127.0.0.1:$BENCH_PORT/info" | jq . >"$RUN_DIR/info-after-import.json"
sleep 5
stop_server
du_after_serve=$(du -sb "$STORE_DIR" | cut -f1)
sst_after_serve=$(sst_bytes)
size_line "after serve start/stop" >>"$RUN_DIR/disk.txt"

log "full compaction: dnsrecall compact"
start=$(now_ns)
/usr/bin/time -v -o "$RUN_DIR/compact.time.txt" "$BIN" --data-dir "$STORE_DIR" compact >"$RUN_DIR/compact.out" 2>&1
end=$(now_ns)
compact_seconds=$(seconds_between "$start" "$end")
du_after_compact=$(du -sb "$STORE_DIR" | cut -f1)
sst_after_compact=$(sst_bytes)
size_line "after full compaction" >>"$RUN_DIR/disk.txt"
ls -l "$STORE_DIR" >"$RUN_DIR/store-listing.txt"

log "counting distinct records with dnsrecall export"
start=$(now_ns)
records=$("$BIN" --data-dir "$STORE_DIR" export | wc -l)
end=$(now_ns)
export_seconds=$(seconds_between "$start" "$end")
echo "$BIN --data-dir STORE export | wc -l: $records records in $export_seconds s (generator: $generated_records distinct records)" \
  >"$RUN_DIR/export-count.txt"

# --- figures -------------------------------------------------------------------
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
import_rate=$(calc '%.0f' "$imported_lines / $import_seconds")
import_inner_rate=$(calc '%.0f' "$imported_lines / $import_inner_seconds")
cat_rate=$(calc '%.0f' "$lines / $cat_seconds")
wc_rate=$(calc '%.0f' "$lines / $wc_seconds")
mib_s=$(calc '%.1f' "$file_bytes / $import_seconds / 1048576")
cat_mib_s=$(calc '%.0f' "$file_bytes / $cat_seconds / 1048576")
ratio_cat=$(calc '%.4f' "$import_rate / $cat_rate")
ratio_wc=$(calc '%.4f' "$import_rate / $wc_rate")
bpr_import=$(calc '%.1f' "$du_after_import / $records")
bpr_serve=$(calc '%.1f' "$du_after_serve / $records")
bpr_compact=$(calc '%.1f' "$du_after_compact / $records")
bpr_sst=$(calc '%.1f' "$sst_after_compact / $records")
rss_mib=$(calc '%.0f' "$import_rss_kib / 1024")
met() { awk "BEGIN { print ($1) ? \"met\" : \"**not met**\" }"; }

cat >"$RUN_DIR/import.env" <<EOF
lines=$imported_lines
rejected=$rejected
file_bytes=$file_bytes
records=$records
generated_records=$generated_records
cat_seconds=$cat_seconds
wc_seconds=$wc_seconds
import_seconds=$import_seconds
import_inner_seconds=$import_inner_seconds
import_rate=$import_rate
import_inner_rate=$import_inner_rate
ratio_cat=$ratio_cat
ratio_wc=$ratio_wc
import_user=$import_user
import_sys=$import_sys
import_cpu_pct=$import_cpu_pct
import_rss_kib=$import_rss_kib
du_after_import=$du_after_import
du_after_serve=$du_after_serve
du_after_compact=$du_after_compact
sst_after_import=$sst_after_import
sst_after_serve=$sst_after_serve
sst_after_compact=$sst_after_compact
bytes_per_record=$bpr_compact
EOF

cat >"$RUN_DIR/summary-import.md" <<EOF
## Import (bench/import.sh)

Input: \`$COF_FILE\`: $lines COF lines, $file_bytes bytes, $generated_records distinct records
(\`python3 bench/gen_cof.py --lines $BENCH_LINES --names $BENCH_NAMES --seed $BENCH_SEED DIR\`).

| figure | value | command |
|---|---|---|
| reference read | $cat_rate lines/s ($cat_mib_s MiB/s, $cat_seconds s) | \`cat FILE > /dev/null\` (warm cache, median of 3) |
| reference count | $wc_rate lines/s ($wc_seconds s) | \`wc -l FILE\` (median of 3) |
| **import** | **$import_rate lines/s** ($mib_s MiB/s, $import_seconds s wall, process start to exit) | \`/usr/bin/time -v dnsrecall --data-dir STORE import --format cof --json-summary FILE\` |
| import, own timer | $import_inner_rate lines/s ($import_inner_seconds s, from \`--json-summary\`) | same |
| import ÷ cat | $ratio_cat | |
| import ÷ wc -l | $ratio_wc | |
| import CPU | user $import_user s, sys $import_sys s ($import_cpu_pct of one core) | \`/usr/bin/time -v\` |
| import peak RSS | $rss_mib MiB | \`/usr/bin/time -v\` (Maximum resident set size) |
| rejected lines | $rejected | \`--json-summary\` |
| distinct records | $records (generator says $generated_records) | \`dnsrecall --data-dir STORE export \\| wc -l\` ($export_seconds s) |
| size after import | $du_after_import bytes = $bpr_import B/record (SST $sst_after_import) | \`du -sb STORE\` |
| size after serve start/stop | $du_after_serve bytes = $bpr_serve B/record (SST $sst_after_serve) | \`dnsrecall serve\`, SIGTERM; \`du -sb STORE\` |
| **size after full compaction** | **$du_after_compact bytes = $bpr_compact B/record** (SST only: $bpr_sst B/record) | \`dnsrecall --data-dir STORE compact\` ($compact_seconds s); \`du -sb STORE\` |

Targets: import ≥ 300k lines/s: $(met "$import_rate >= 300000"); ≤ 60 bytes per record on disk after compaction: $(met "$bpr_compact <= 60").

Raw: [import.time.txt](import.time.txt), [import.json](import.json), [import.stderr](import.stderr),
[reference-read.txt](reference-read.txt), [disk.txt](disk.txt), [compact.out](compact.out), [compact.time.txt](compact.time.txt),
[info-after-import.json](info-after-import.json), [export-count.txt](export-count.txt), [store-listing.txt](store-listing.txt);
load on the shared machine during the script: [load-import.txt](load-import.txt).
EOF
assemble_summary
cat "$RUN_DIR/summary-import.md"
