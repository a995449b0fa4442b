#!/usr/bin/env bash
# Query speed of two dnsrecall binaries on the same store, interleaved A/B
# (the query-engine refactor of issue 9: dnsrecall-query under the HTTP
# routes must not be slower than the routes that held the code).
#
#   bench/query_ab.sh BIN_A BIN_B     # A = reference (before), B = candidate
#
# In one run:
#   1. generate (cached) RECORDS distinct COF records with bench/dnsdb/gen.py
#      and import them into an empty store with BIN_B (same on-disk format
#      for both binaries);
#   2. ROUNDS rounds; each round serves the store with A then B (B then A in
#      even rounds, so drift of the shared machine falls on both), and
#      against each server measures
#      a. exact lookups: wrk -t2 -cCONNECTIONS -dDURATION over names.txt on
#         /dnsdb/v2/lookup/rrset/name/NAME (DNSDB, SAF) and on /query/NAME
#         (D4): requests/s and p99;
#      b. a wildcard stream: /dnsdb/v2/lookup/rrset/name/*.com?limit=0 with
#         curl into `wc -l`, twice: rows and seconds (rows/s);
#      and, for both, the server's CPU time (utime + stime of the server
#      process over the run: per request, per row), which the rest of a
#      shared machine disturbs much less than wall-clock rates;
#   3. summary-query-ab.md in the run folder: the median of each figure per
#      binary and the ratio B ÷ A, also printed.
#
# Environment:
#   BENCH_AB_RECORDS      distinct records (default 1000000)
#   BENCH_AB_ROUNDS       A/B rounds (default 3)
#   BENCH_AB_DURATION     wrk duration per run (default 5s)
#   BENCH_AB_CONNECTIONS  wrk connections (default 4)
#   BENCH_AB_PORT         loopback port (default 18477)
#   BENCH_AB_RUN_DIR      run folder (default bench/runs/<YYYY-MM-DD>-<hostname>/query-ab;
#                         its data/ subfolder is git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
BIN_A=$(realpath "$1")
BIN_B=$(realpath "$2")
export BENCH_RUN_DIR="${BENCH_AB_RUN_DIR:-bench/runs/$(date +%F)-$(hostname -s)/query-ab}"
source bench/common.sh
BENCH_PORT="${BENCH_AB_PORT:-18477}"
RECORDS="${BENCH_AB_RECORDS:-1000000}"
ROUNDS="${BENCH_AB_ROUNDS:-3}"
DURATION="${BENCH_AB_DURATION:-5s}"
CONNECTIONS="${BENCH_AB_CONNECTIONS:-4}"
BASE="http://127.0.0.1:$BENCH_PORT"
CONFIG="$DATA_DIR/serve.toml"
trap 'stop_server; stop_load_monitor' EXIT

describe_machine
if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi
{
  echo "A: $BIN_A ($("$BIN_A" --version), sha256 $(sha256sum "$BIN_A" | cut -c1-16))"
  echo "B: $BIN_B ($("$BIN_B" --version), sha256 $(sha256sum "$BIN_B" | cut -c1-16))"
} >"$RUN_DIR/binaries.txt"

# --- 1. data and store --------------------------------------------------------
gen_key="$(sha256sum bench/dnsdb/gen.py | cut -c1-16) records=$RECORDS"
if [ "$(cat "$DATA_DIR/gen.key" 2>/dev/null)" != "$gen_key" ]; then
  rm -rf "$DATA_DIR"
  mkdir -p "$DATA_DIR"
  log "generating $RECORDS records"
  python3 bench/dnsdb/gen.py store --records "$RECORDS" --keys 100000 "$DATA_DIR" >/dev/null
  echo "$gen_key" >"$DATA_DIR/gen.key"
fi
if [ ! -d "$STORE_DIR" ]; then
  log "importing them with B"
  "$BIN_B" --data-dir "$STORE_DIR" import --format cof "$COF_FILE" 2>&1 | tail -n 1 >"$DATA_DIR/import.txt"
fi
cp "$DATA_DIR/import.txt" "$RUN_DIR/import.txt"
com_records=$(jq -r .com_records "$DATA_DIR/meta.json")
cat >"$CONFIG" <<EOF
# Written by bench/query_ab.sh.
data_dir = "store"

[api]
# limit=0 asks for this many: enough for the whole *.com scan.
dnsdb_max_results = $((com_records * 2))
EOF

# --- 2. interleaved rounds -------------------------------------------------------
serve() { # serve BIN LOG
  BIN=$1
  if ss -ltn "sport = :$BENCH_PORT" | grep -q LISTEN; then
    echo "port $BENCH_PORT is in use; set BENCH_AB_PORT" >&2
    exit 1
  fi
  "$BIN" --config "$CONFIG" serve --listen "127.0.0.1:$BENCH_PORT" >"$2" 2>&1 &
  SERVER_PID=$!
  local tries=0
  until curl -sf "$BASE/dnsdb/v2/ping" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 600 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "dnsrecall serve did not come up; see $2" >&2
      exit 1
    fi
    sleep 0.1
  done
}
figure() { sed -n 's/^JSON //p' "$1" | jq -r ".$2"; }
results="$RUN_DIR/results.tsv"
printf 'round\tside\tmeasure\tvalue\n' >"$results"
start_load_monitor query-ab
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
  for side in $order; do
    bin=$BIN_A
    [ "$side" = B ] && bin=$BIN_B
    log "round $round, $side"
    serve "$bin" "$RUN_DIR/serve-$side-$round.log"
    # Warm-up, not recorded: the block cache, the page cache.
    wrk -t2 -c"$CONNECTIONS" -d2s -s bench/rotate.lua "$BASE" -- "$DATA_DIR/names.txt" /dnsdb/v2/lookup/rrset/name/ >/dev/null 2>&1
    curl -s "$BASE/dnsdb/v2/lookup/rrset/name/*.com?limit=0" >/dev/null
    for route in dnsdb d4; do
      case $route in
        dnsdb) prefix=/dnsdb/v2/lookup/rrset/name/ ;;
        d4) prefix=/query/ ;;
      esac
      out="$RUN_DIR/wrk-$route-$side-$round.txt"
      cpu_before=$(process_cpu_seconds "$SERVER_PID")
      wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/rotate.lua "$BASE" -- "$DATA_DIR/names.txt" "$prefix" >"$out" 2>&1
      cpu_after=$(process_cpu_seconds "$SERVER_PID")
      printf '%s\t%s\t%s_rps\t%s\n' "$round" "$side" "$route" "$(figure "$out" rps)" >>"$results"
      printf '%s\t%s\t%s_cpu_us_per_request\t%s\n' "$round" "$side" "$route" \
        "$(awk -v a="$cpu_before" -v b="$cpu_after" -v n="$(figure "$out" requests)" 'BEGIN { printf "%.1f", (n > 0 ? (b - a) / n * 1e6 : 0) }')" >>"$results"
      printf '%s\t%s\t%s_p99_us\t%s\n' "$round" "$side" "$route" "$(figure "$out" p99_us)" >>"$results"
      printf '%s\t%s\t%s_errors\t%s\n' "$round" "$side" "$route" \
        "$(sed -n 's/^JSON //p' "$out" | jq '.connect_errors + .read_errors + .write_errors + .status_errors + .timeouts')" >>"$results"
    done
    for try in 1 2; do
      cpu_before=$(process_cpu_seconds "$SERVER_PID")
      start=$(now_ns)
      rows=$(curl -s "$BASE/dnsdb/v2/lookup/rrset/name/*.com?limit=0" | wc -l)
      end=$(now_ns)
      seconds=$(seconds_between "$start" "$end")
      cpu_after=$(process_cpu_seconds "$SERVER_PID")
      printf '%s\t%s\twildcard_cpu_ns_per_row\t%s\n' "$round" "$side" \
        "$(awk -v a="$cpu_before" -v b="$cpu_after" -v r="$((rows - 2))" 'BEGIN { printf "%.0f", (r > 0 ? (b - a) / r * 1e9 : 0) }')" >>"$results"
      # Two lines are SAF's begin and succeeded.
      printf '%s\t%s\twildcard_rows\t%s\n' "$round" "$side" "$((rows - 2))" >>"$results"
      printf '%s\t%s\twildcard_rows_per_s\t%s\n' "$round" "$side" \
        "$(awk -v r="$((rows - 2))" -v s="$seconds" 'BEGIN { printf "%.0f", r / s }')" >>"$results"
    done
    stop_server
  done
done
stop_load_monitor

# --- 3. summary ---------------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }'; }
value() { awk -F'\t' -v s="$1" -v m="$2" '$2 == s && $3 == m { print $4 }' "$results" | median; }
row() { # row MEASURE LABEL
  local a b
  a=$(value A "$1")
  b=$(value B "$1")
  printf '| %s | %s | %s | %s |\n' "$2" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", (a > 0 ? b / a : 0) }')"
}
cat >"$RUN_DIR/summary-query-ab.md" <<EOF
## Query engine A/B (bench/query_ab.sh)

\`bench/query_ab.sh BIN_A BIN_B\` ([binaries.txt](binaries.txt)): $RECORDS records (bench/dnsdb/gen.py),
$ROUNDS interleaved rounds (A B, B A, ...), each: wrk -t2 -c$CONNECTIONS -d$DURATION over names.txt after a
2 s warm-up, then \`*.com?limit=0\` ($com_records rows) twice with curl. Medians per binary; ratio B ÷ A
(rates: > 1 is B faster; CPU per request or row and p99: > 1 is B slower). wrk, curl and the server share the machine's $(nproc) cores with
whatever else runs ([load-query-ab.txt](load-query-ab.txt)). Raw figures: [results.tsv](results.tsv).

The wall-clock figures depend on what else the shared machine runs; the server's own CPU time per
request or per row (utime + stime from /proc, over the same runs) depends much less on it: it is the
figure to read first.

| measure | A | B | B ÷ A |
|---|---|---|---|
$(row dnsdb_cpu_us_per_request "exact DNSDB lookup, server CPU µs per request")
$(row d4_cpu_us_per_request "exact D4 lookup, server CPU µs per request")
$(row wildcard_cpu_ns_per_row "wildcard stream, server CPU ns per row")
$(row dnsdb_rps "exact DNSDB lookup /dnsdb/v2/lookup/rrset/name/NAME, requests/s")
$(row dnsdb_p99_us "exact DNSDB lookup, p99 µs")
$(row d4_rps "exact D4 lookup /query/NAME, requests/s")
$(row d4_p99_us "exact D4 lookup, p99 µs")
$(row wildcard_rows_per_s "wildcard stream rrset/name/*.com?limit=0, rows/s")
$(row wildcard_rows "wildcard stream, rows")
$(row dnsdb_errors "wrk errors (DNSDB)")
$(row d4_errors "wrk errors (D4)")
EOF
cat "$RUN_DIR/summary-query-ab.md"
