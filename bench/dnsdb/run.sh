#!/usr/bin/env bash
# DNSDB API benchmark (issue #6): a store of ≥ 10M records behind
# /dnsdb/v2, measured over loopback HTTP, plus `dnsrecall annotate` on it.
#
#   bench/dnsdb/run.sh                                # 10M records (~7 min once built, +1 min to generate)
#   BENCH_DNSDB_RECORDS=200000 bench/dnsdb/run.sh     # quick check of the script
#
# In one run:
#   1. build the release binary (copied to data/dnsrecall, see bench/common.sh);
#   2. generate (cached while the parameters and generators are unchanged)
#      RECORDS distinct COF records with bench/dnsdb/gen.py (A/AAAA/CNAME/NS/
#      MX/TXT/SOA over many zones and TLDs, ~45 % under .com, IPv4 in
#      10.0.0.0/8 with 10.42.0.0/16 holding every one of its 65,536 addresses
#      and > 100k records), samples of names and addresses for wrk, and the
#      flows of bench/annotate/gen.py aimed at addresses of this store;
#   3. import into an empty store (`/usr/bin/time -v dnsrecall import --format
#      cof --json-summary`), `dnsrecall compact`, store size (`du -sb`),
#      distinct records (`dnsrecall export | wc -l`);
#   4. `dnsrecall --config data/serve.toml serve` (127.0.0.1 only,
#      api.dnsdb_max_results raised for the scans, a key in
#      api.dnsdb_keys_file sent as X-API-Key), after 200-name/200-address
#      sanity checks:
#      a. wrk -t2 -cN --latency -s bench/rotate.lua, after a 3 s
#         warm-up, at N = 4 and 16: /dnsdb/v2/ping (reference, the cheapest
#         route), /dnsdb/v2/lookup/rrset/name/NAME over names.txt and
#         /dnsdb/v2/lookup/rdata/ip/ADDR over ips.txt: requests/s, p50/p90/p99,
#         server CPU, CPU of wrk and of the other processes;
#      b. /dnsdb/v2/lookup/rrset/name/*.com?limit=0 with curl into `wc -l`:
#         one warm-up saved to a file and checked (begin, succeeded, row count
#         = generator's .com records), then REPEATS timed runs: rows, seconds,
#         rows/s, time to first byte and to first row; reference: `cat` of the
#         saved answer (same bytes) into `wc -l`;
#      c. /dnsdb/v2/lookup/rdata/ip/10.42.0.0,16?limit=0 the same way;
#      server peak RSS (VmHWM) after each part, server CPU seconds;
#      d. diagnostics, not the server as shipped: the wrk runs of (a) again
#         with TCP_NODELAY forced on the server's sockets (LD_PRELOAD of
#         bench/dnsdb/nodelay.c: separates Nagle/delayed-ACK waits from
#         server work), then also with store.block_cache_mib = DIAG_CACHE_MIB
#         (larger than the store: separates block reads from the rest);
#   5. server stopped, `dnsrecall annotate flows.csv` against the store
#      (REPEATS runs, median) and `cat` of the same file; diagnostic: the
#      same with block_cache_mib = DIAG_CACHE_MIB;
#   6. summary.md (markdown) in the run folder, also printed.
# wrk, curl and the server share the machine's cores (2 here); the load
# average and the busiest processes are sampled every 10 s (load-*.txt).
#
# Environment:
#   CARGO_TARGET_DIR            release build directory (default /root/.cache/dnsrecall-target-release)
#   BENCH_DNSDB_RECORDS         distinct records to generate (default 10000000)
#   BENCH_DNSDB_SEED            generator seed (default 20241122)
#   BENCH_DNSDB_KEYS            size of the names.txt / ips.txt samples for wrk (default 1000000)
#   BENCH_DNSDB_FLOWS           flows for annotate (default 1000000)
#   BENCH_DNSDB_FLOW_IPS        distinct destination addresses of the flows (default 200000)
#   BENCH_DNSDB_PORT            loopback port of the server (default 18476)
#   BENCH_DNSDB_DURATION        wrk duration per run (default 10s)
#   BENCH_DNSDB_CONNECTIONS     wrk connection counts (default "4 16")
#   BENCH_DNSDB_ROUTES          wrk routes among ping, names, ips (default "ping names ips")
#   BENCH_DNSDB_REPEATS         timed runs of each scan and of annotate (default 3)
#   BENCH_DNSDB_BUILD_TRIES     build attempts (default 3) ...
#   BENCH_DNSDB_BUILD_WAIT      ... seconds apart (default 180)
#   BENCH_DNSDB_SKIP_BUILD      1 = use the binary already copied to data/dnsrecall
#   BENCH_DNSDB_REUSE_STORE     1 = keep the store if the same binary imported the same data
#   BENCH_DNSDB_DIAG            0 = skip the diagnostics of 4d and 5 (default 1)
#   BENCH_DNSDB_DIAG_CACHE_MIB  block cache of the second diagnostic (default 2048)
#   BENCH_DNSDB_RUN_DIR         run folder (default bench/runs/<YYYY-MM-DD>-<hostname>/dnsdb;
#                               its data/ subfolder is git-ignored; everything else in it is
#                               replaced on each run)
set -euo pipefail
cd "$(dirname "$0")/../.."
export BENCH_RUN_DIR="${BENCH_DNSDB_RUN_DIR:-bench/runs/$(date +%F)-$(hostname -s)/dnsdb}"
source bench/common.sh
BENCH_PORT="${BENCH_DNSDB_PORT:-18476}"
RECORDS="${BENCH_DNSDB_RECORDS:-10000000}"
SEED="${BENCH_DNSDB_SEED:-20241122}"
KEYS="${BENCH_DNSDB_KEYS:-1000000}"
FLOWS="${BENCH_DNSDB_FLOWS:-1000000}"
FLOW_IPS="${BENCH_DNSDB_FLOW_IPS:-200000}"
DURATION="${BENCH_DNSDB_DURATION:-10s}"
CONNECTIONS="${BENCH_DNSDB_CONNECTIONS:-4 16}"
ROUTES="${BENCH_DNSDB_ROUTES:-ping names ips}"
REPEATS="${BENCH_DNSDB_REPEATS:-3}"
BUILD_TRIES="${BENCH_DNSDB_BUILD_TRIES:-3}"
BUILD_WAIT="${BENCH_DNSDB_BUILD_WAIT:-180}"
DIAG="${BENCH_DNSDB_DIAG:-1}"
DIAG_CACHE_MIB="${BENCH_DNSDB_DIAG_CACHE_MIB:-2048}"
THREADS=2
BASE="http://127.0.0.1:$BENCH_PORT"
FLOWS_FILE="$DATA_DIR/flows.csv"
CONFIG="$DATA_DIR/serve.toml"
CACHE_CONFIG="$DATA_DIR/serve-cache.toml"
trap 'stop_server; stop_load_monitor' EXIT

case "$RUN_DIR" in
  */dnsdb | "$BENCH_DNSDB_RUN_DIR") ;;
  *) echo "unexpected run folder $RUN_DIR" >&2; exit 2 ;;
esac
# The run folder holds this run only (data/ is the cache).
find "$RUN_DIR" -mindepth 1 -maxdepth 1 ! -name data -exec rm -rf {} +
mkdir -p "$DATA_DIR"

calc() { awk "BEGIN { printf \"$1\", $2 }"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# phase NAME start|end: the load average at each end of a part.
phase() { echo "$1 $2 $(date +%T) loadavg $(loadavg)" >>"$RUN_DIR/loadavg.txt"; }
phase_load() { # phase_load NAME: "a b c → d e f"
  printf '%s → %s' "$(awk -v p="$1" '$1 == p && $2 == "start" { print $5, $6, $7 }' "$RUN_DIR/loadavg.txt")" \
    "$(awk -v p="$1" '$1 == p && $2 == "end" { print $5, $6, $7 }' "$RUN_DIR/loadavg.txt")"
}
# Busy CPU seconds of the whole machine so far (all cores, /proc/stat).
machine_busy_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}
median() { sort -g | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }'; }
vm_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER_PID/status"; }

describe_machine
if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

# --- 1. build ------------------------------------------------------------------
phase build start
if [ "${BENCH_DNSDB_SKIP_BUILD:-0}" = 1 ] && [ -x "$BIN" ]; then
  log "BENCH_DNSDB_SKIP_BUILD=1: using $BIN"
else
  built=0
  for try in $(seq 1 "$BUILD_TRIES"); do
    log "cargo build --release --locked -p dnsrecall (CARGO_TARGET_DIR=$CARGO_TARGET_DIR), try $try of $BUILD_TRIES"
    if cargo build --release --locked -p dnsrecall >"$RUN_DIR/build.log" 2>&1 && [ -x "$BUILT_BIN" ]; then
      install -m 755 "$BUILT_BIN" "$BIN"
      built=1
      break
    fi
    tail -n 15 "$RUN_DIR/build.log" >&2
    if [ "$try" -lt "$BUILD_TRIES" ]; then
      log "build failed; next try in $BUILD_WAIT s"
      sleep "$BUILD_WAIT"
    fi
  done
  [ "$built" = 1 ] || { echo "release build failed $BUILD_TRIES times; see $RUN_DIR/build.log" >&2; exit 1; }
fi
{
  echo "binary: $("$BIN" --version)"
  echo "sha256: $(sha256sum "$BIN" | cut -d' ' -f1)"
  echo "built: $(stat -c %y "$BUILT_BIN" 2>/dev/null || echo unknown)"
  echo "copied to: $BIN"
} >"$RUN_DIR/binary.txt"
BIN_SHA=$(sha256sum "$BIN" | cut -c1-16)
phase build end

# --- 2. data ---------------------------------------------------------------------
phase generate start
start_load_monitor generate
gen_key="$(cat bench/dnsdb/gen.py bench/annotate/gen.py | sha256sum | cut -c1-16) records=$RECORDS seed=$SEED keys=$KEYS flows=$FLOWS flow_ips=$FLOW_IPS"
if [ -s "$DATA_DIR/meta.json" ] && [ -s "$COF_FILE" ] && [ -s "$FLOWS_FILE" ] && [ -s "$DATA_DIR/flow-ips.txt" ] &&
  [ "$(cat "$DATA_DIR/gen.key" 2>/dev/null)" = "$gen_key" ]; then
  log "reusing generated data in $DATA_DIR ($gen_key)"
  echo "reused from an earlier run: $gen_key" >"$RUN_DIR/generate.txt"
else
  log "generating $RECORDS records into $DATA_DIR"
  rm -f "$DATA_DIR/gen.key" "$DATA_DIR/store.key"
  start=$(now_ns)
  python3 bench/dnsdb/gen.py store --records "$RECORDS" --seed "$SEED" --keys "$KEYS" "$DATA_DIR" >/dev/null
  end=$(now_ns)
  unique_v4=$(jq -r .unique_v4 "$DATA_DIR/meta.json")
  flow_ips=$((FLOW_IPS < unique_v4 ? FLOW_IPS : unique_v4))
  log "generating $FLOWS flows over $flow_ips addresses"
  python3 bench/dnsdb/gen.py flows "$FLOWS" "$flow_ips" "$FLOWS_FILE"
  end2=$(now_ns)
  echo "$flow_ips" >"$DATA_DIR/flow-ips.txt"
  {
    echo "python3 bench/dnsdb/gen.py store --records $RECORDS --seed $SEED --keys $KEYS DIR: $(seconds_between "$start" "$end") s"
    echo "python3 bench/dnsdb/gen.py flows $FLOWS $flow_ips DIR/flows.csv: $(seconds_between "$end" "$end2") s"
  } >"$RUN_DIR/generate.txt"
  echo "$gen_key" >"$DATA_DIR/gen.key"
fi
cp "$DATA_DIR/meta.json" "$RUN_DIR/data-meta.json"
flow_ips=$(cat "$DATA_DIR/flow-ips.txt")
head -n 3 "$COF_FILE" >"$RUN_DIR/cof-sample.ndjson"
stop_load_monitor
phase generate end

meta() { jq -r ".$1" "$DATA_DIR/meta.json"; }
gen_records=$(meta distinct_records)
file_bytes=$(stat -c %s "$COF_FILE")
com_records=$(meta com_records)
hot_records=$(meta hot_records)
hot_prefix=$(meta hot_prefix)

# --- 3. import, compact, size ---------------------------------------------------------
phase import start
start_load_monitor import
store_key="$gen_key bin=$BIN_SHA"
imported=0
if [ "${BENCH_DNSDB_REUSE_STORE:-0}" = 1 ] && [ -d "$STORE_DIR" ] &&
  [ "$(cat "$DATA_DIR/store.key" 2>/dev/null)" = "$store_key" ]; then
  log "BENCH_DNSDB_REUSE_STORE=1: keeping $STORE_DIR (same data, same binary)"
else
  log "import of $gen_records records into an empty store"
  rm -rf "$STORE_DIR" "$DATA_DIR/store.key"
  start=$(now_ns)
  /usr/bin/time -v -o "$RUN_DIR/import.time.txt" \
    "$BIN" --data-dir "$STORE_DIR" import --format cof --json-summary "$COF_FILE" \
    >"$RUN_DIR/import.json" 2>"$RUN_DIR/import.stderr"
  end=$(now_ns)
  import_seconds=$(seconds_between "$start" "$end")
  du_after_import=$(du -sb "$STORE_DIR" | cut -f1)
  log "dnsrecall compact"
  start=$(now_ns)
  /usr/bin/time -v -o "$RUN_DIR/compact.time.txt" "$BIN" --data-dir "$STORE_DIR" compact >"$RUN_DIR/compact.out" 2>&1
  end=$(now_ns)
  compact_seconds=$(seconds_between "$start" "$end")
  echo "$store_key" >"$DATA_DIR/store.key"
  imported=1
fi
du_after_compact=$(du -sb "$STORE_DIR" | cut -f1)
log "counting distinct records with dnsrecall export"
start=$(now_ns)
records=$("$BIN" --data-dir "$STORE_DIR" export | wc -l)
end=$(now_ns)
export_seconds=$(seconds_between "$start" "$end")
echo "dnsrecall --data-dir STORE export | wc -l: $records in $export_seconds s (generator: $gen_records)" >"$RUN_DIR/export-count.txt"
ls -l "$STORE_DIR" >"$RUN_DIR/store-listing.txt"
stop_load_monitor
phase import end
if [ "$records" != "$gen_records" ]; then
  echo "the store holds $records records, the generator wrote $gen_records" >&2
  exit 1
fi

# --- 4. server ---------------------------------------------------------------------
API_KEY="bench-dnsdb-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '# bench/dnsdb/run.sh: one key, no quota\n%s\n' "$(printf '%s' "$API_KEY" | sha256sum | cut -d' ' -f1)" \
  >"$DATA_DIR/dnsdb-keys.txt"
max_results=$((records * 2 > 1000000 ? records * 2 : 1000000))
cat >"$CONFIG" <<EOF
# Written by bench/dnsdb/run.sh.
data_dir = "store"

[api]
listen = "127.0.0.1:$BENCH_PORT"
# limit=0 asks for this many: enough for the whole *.com and CIDR scans.
dnsdb_max_results = $max_results
dnsdb_keys_file = "dnsdb-keys.txt"
EOF
"$BIN" --config "$CONFIG" config check >"$RUN_DIR/serve-config.toml"

# start_dnsdb_server LOG CONFIG [VAR=VALUE...]: serve with CONFIG (and the
# given environment); sets SERVER_PID; waits for /dnsdb/v2/ping.
start_dnsdb_server() {
  local out=$1 config=$2 tries=0
  shift 2
  if ss -ltn "sport = :$BENCH_PORT" | grep -q LISTEN; then
    echo "port $BENCH_PORT is in use; set BENCH_DNSDB_PORT" >&2
    exit 1
  fi
  log "starting ${*:+$* }dnsrecall --config $config serve on $BASE"
  env "$@" "$BIN" --config "$config" serve >"$out" 2>&1 &
  SERVER_PID=$!
  until curl -sf "$BASE/dnsdb/v2/ping" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 600 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "dnsrecall serve did not come up; see $out" >&2
      exit 1
    fi
    sleep 0.1
  done
}
phase serve start
start_load_monitor serve
start_dnsdb_server "$RUN_DIR/serve.log" "$CONFIG"
hdr=(-H "X-API-Key: $API_KEY" -H "Accept: application/x-ndjson")

# --- sanity: the answers are real -----------------------------------------------------
log "sanity checks (200 names, 200 addresses, auth)"
check_hits() { # check_hits FILE PATH_PREFIX LABEL
  local file=$1 prefix=$2 label=$3 hits=0 asked=0 key body
  while read -r key; do
    asked=$((asked + 1))
    body=$(curl -sf "${hdr[@]}" "$BASE$prefix$key" || true)
    if printf '%s' "$body" | grep -qF "$key" && [ "$(printf '%s\n' "$body" | tail -n 1)" = '{"cond":"succeeded"}' ]; then
      hits=$((hits + 1))
    fi
  done < <(head -n 200 "$file")
  echo "$label: $hits of $asked sampled keys answered (SAF, succeeded) with rows containing the key"
}
{
  check_hits "$DATA_DIR/names.txt" /dnsdb/v2/lookup/rrset/name/ "rrset/name/NAME"
  check_hits "$DATA_DIR/ips.txt" /dnsdb/v2/lookup/rdata/ip/ "rdata/ip/ADDR"
  name=$(head -n 1 "$DATA_DIR/names.txt")
  echo "answer to rrset/name/$name:"
  curl -sf "${hdr[@]}" "$BASE/dnsdb/v2/lookup/rrset/name/$name" | sed 's/^/  /'
  echo "without a key: HTTP $(curl -s -o /dev/null -w '%{http_code}' "$BASE/dnsdb/v2/lookup/rrset/name/$name")"
  echo "with a wrong key: HTTP $(curl -s -o /dev/null -w '%{http_code}' -H 'X-API-Key: wrong-key-123' "$BASE/dnsdb/v2/lookup/rrset/name/$name")"
  echo "rate_limit: $(curl -sf "${hdr[@]}" "$BASE/dnsdb/v2/rate_limit" | tr -d '\n ')"
} >"$RUN_DIR/sanity.txt"
cat "$RUN_DIR/sanity.txt" >&2
sanity_names=$(sed -n '1s/.*: \([0-9]* of [0-9]*\) .*/\1/p' "$RUN_DIR/sanity.txt")
sanity_ips=$(sed -n '2s/.*: \([0-9]* of [0-9]*\) .*/\1/p' "$RUN_DIR/sanity.txt")

# --- 4a. wrk ----------------------------------------------------------------------
echo "ping" >"$DATA_DIR/ping-path.txt"
route_keys() { case $1 in ping) echo "$DATA_DIR/ping-path.txt" ;; names) echo "$DATA_DIR/names.txt" ;; ips) echo "$DATA_DIR/ips.txt" ;; esac; }
route_prefix() { case $1 in ping) echo /dnsdb/v2/ ;; names) echo /dnsdb/v2/lookup/rrset/name/ ;; ips) echo /dnsdb/v2/lookup/rdata/ip/ ;; esac; }
route_label() {
  case $1 in
    ping) echo "/dnsdb/v2/ping (reference)" ;;
    names) echo "/dnsdb/v2/lookup/rrset/name/NAME ($(wc -l <"$DATA_DIR/names.txt") names)" ;;
    ips) echo "/dnsdb/v2/lookup/rdata/ip/ADDR ($(wc -l <"$DATA_DIR/ips.txt") addresses)" ;;
  esac
}
run_wrk() { # run_wrk TAG ROUTE CONNECTIONS: writes $RUN_DIR/wrk-TAGROUTE-cCONNECTIONS.txt
  local tag=$1 route=$2 conns=$3 threads out cpu_before cpu_after busy_before busy_after
  out="$RUN_DIR/wrk-$tag$route-c$conns.txt"
  threads=$((conns < THREADS ? conns : THREADS))
  cpu_before=$(process_cpu_seconds "$SERVER_PID")
  busy_before=$(machine_busy_seconds)
  {
    echo "\$ wrk -t$threads -c$conns -d$DURATION --latency -s bench/rotate.lua $BASE -- $(route_keys "$route") $(route_prefix "$route") KEY"
    echo "loadavg before: $(loadavg)"
    /usr/bin/time -f 'wrk CPU seconds: %U user %S system' \
      wrk -t"$threads" -c"$conns" -d"$DURATION" --latency -s bench/rotate.lua "$BASE" -- \
      "$(route_keys "$route")" "$(route_prefix "$route")" "$API_KEY"
  } >"$out" 2>&1
  cpu_after=$(process_cpu_seconds "$SERVER_PID")
  busy_after=$(machine_busy_seconds)
  echo "server CPU seconds during the run: $(calc '%.2f' "$cpu_after - $cpu_before")" >>"$out"
  echo "machine busy CPU seconds during the run (all processes): $(calc '%.2f' "$busy_after - $busy_before")" >>"$out"
  echo "loadavg after: $(loadavg)" >>"$out"
}
figure() { sed -n 's/^JSON //p' "$1" | jq -r ".$2"; }
ms() { calc '%.2f' "$1 / 1000"; }

wrk_warm_up() {
  log "wrk warm-up (3 s per lookup route, not recorded)"
  local route
  for route in $ROUTES; do
    [ "$route" = ping ] && continue
    wrk -t"$THREADS" -c16 -d3s -s bench/rotate.lua "$BASE" -- "$(route_keys "$route")" "$(route_prefix "$route")" "$API_KEY" >/dev/null 2>&1
  done
}
# wrk_round TAG: every route at every connection count; appends to WRK_ROWS.
wrk_round() {
  local tag=$1 conns route out ping_rps rps requests errors cpu busy wrk_cpu others ratio
  WRK_ROWS=""
  for conns in $CONNECTIONS; do
    for route in $ROUTES; do
      log "wrk ${tag}$route, $conns connections, $DURATION"
      run_wrk "$tag" "$route" "$conns"
    done
    ping_rps=""
    [ -s "$RUN_DIR/wrk-${tag}ping-c$conns.txt" ] && ping_rps=$(figure "$RUN_DIR/wrk-${tag}ping-c$conns.txt" rps)
    for route in $ROUTES; do
      out="$RUN_DIR/wrk-$tag$route-c$conns.txt"
      rps=$(figure "$out" rps)
      requests=$(figure "$out" requests)
      errors=$(sed -n 's/^JSON //p' "$out" | jq '.connect_errors + .read_errors + .write_errors + .status_errors + .timeouts')
      cpu=$(sed -n 's/^server CPU seconds during the run: //p' "$out")
      busy=$(sed -n 's/^machine busy CPU seconds during the run (all processes): //p' "$out")
      wrk_cpu=$(sed -n 's/^wrk CPU seconds: \([0-9.]*\) user \([0-9.]*\) system/\1 \2/p' "$out" | awk '{ printf "%.2f", $1 + $2 }')
      others=$(awk -v b="$busy" -v s="$cpu" -v w="$wrk_cpu" 'BEGIN { o = b - s - w; printf "%.1f", (o < 0 ? 0 : o) }')
      ratio=$([ -n "$ping_rps" ] && calc '%.3f' "$rps / $ping_rps" || echo "-")
      WRK_ROWS+="| $(route_label "$route") | $conns | $(printf '%.0f' "$rps") | $ratio | $(ms "$(figure "$out" p50_us)") | $(ms "$(figure "$out" p90_us)") | **$(ms "$(figure "$out" p99_us)")** | $errors | $(calc '%.0f' "$cpu / $requests * 1e6") | $cpu / $wrk_cpu / $others | $(sed -n 's/^loadavg before: \([^ ]*\).*/\1/p' "$out") | [wrk-$tag$route-c$conns.txt](wrk-$tag$route-c$conns.txt) |"$'\n'
    done
  done
}
wrk_warm_up
wrk_round ""
wrk_rows=$WRK_ROWS
hwm_after_wrk=$(vm_kib VmHWM)
cpu_after_wrk=$(process_cpu_seconds "$SERVER_PID")

# --- 4b, 4c. streamed scans ------------------------------------------------------------
# scan NAME PATH EXPECTED_ROWS: warm-up saved and checked, REPEATS timed runs, cat reference.
scan_rows=""
scan() {
  local name=$1 path=$2 expected=$3 saved="$DATA_DIR/$1.ndjson" start t first last lines rows check i
  log "scan $name: GET $path (warm-up, saved to $saved)"
  start=$(now_ns)
  curl -sS -N "${hdr[@]}" "$BASE$path" |
    { IFS= read -r first; IFS= read -r second; now_ns >"$DATA_DIR/$name.first-row"; printf '%s\n%s\n' "$first" "$second"; exec cat; } >"$saved"
  t=$(cat "$DATA_DIR/$name.first-row")
  lines=$(wc -l <"$saved")
  rows=$((lines - 2))
  first=$(head -n 1 "$saved")
  last=$(tail -n 1 "$saved")
  check="begin line: $first; last line: $last; rows: $rows (expected $expected)"
  echo "warm-up: $check; time to first row $(calc '%.1f' "($t - $start) / 1e6") ms" >"$RUN_DIR/scan-$name.txt"
  echo "first row: $(sed -n 2p "$saved")" >>"$RUN_DIR/scan-$name.txt"
  if [ "$first" != '{"cond":"begin"}' ] || [ "$last" != '{"cond":"succeeded"}' ] || [ "$rows" != "$expected" ]; then
    echo "scan $name is wrong: $check" >&2
    exit 1
  fi
  local bytes cpu_before cpu_after busy_before busy_after w
  bytes=$(stat -c %s "$saved")
  for i in $(seq 1 "$REPEATS"); do
    log "scan $name: timed run $i of $REPEATS"
    w="$RUN_DIR/scan-$name-run$i.txt"
    cpu_before=$(process_cpu_seconds "$SERVER_PID")
    busy_before=$(machine_busy_seconds)
    echo "loadavg before: $(loadavg)" >"$w"
    start=$(now_ns)
    curl -sS -N "${hdr[@]}" -w '%{stderr}curl: ttfb=%{time_starttransfer} total=%{time_total} bytes=%{size_download} code=%{http_code}\n' \
      "$BASE$path" 2>>"$w" |
      { IFS= read -r _; IFS= read -r _; now_ns >"$DATA_DIR/$name.first-row"; exec wc -l; } >"$DATA_DIR/$name.lines"
    cpu_after=$(process_cpu_seconds "$SERVER_PID")
    busy_after=$(machine_busy_seconds)
    {
      echo "lines: $(($(cat "$DATA_DIR/$name.lines") + 2))"
      echo "first row after: $(calc '%.1f' "($(cat "$DATA_DIR/$name.first-row") - $start) / 1e6") ms"
      echo "server CPU seconds: $(calc '%.2f' "$cpu_after - $cpu_before")"
      echo "machine busy CPU seconds: $(calc '%.2f' "$busy_after - $busy_before")"
      echo "loadavg after: $(loadavg)"
    } >>"$w"
    if [ "$(sed -n 's/^lines: //p' "$w")" != "$lines" ] || ! grep -q "bytes=$bytes code=200" "$w"; then
      echo "scan $name run $i differs from the warm-up answer ($lines lines, $bytes bytes):" >&2
      cat "$w" >&2
      exit 1
    fi
  done
  log "scan $name: reference cat | wc -l of the same $bytes bytes"
  for i in $(seq 1 "$REPEATS"); do
    start=$(now_ns)
    cat "$saved" | wc -l >/dev/null
    end=$(now_ns)
    echo "$(seconds_between "$start" "$end")"
  done >"$RUN_DIR/scan-$name-cat.txt"
  # Median run by total seconds.
  local totals median_total med ttfb first_row cpu busy cat_s
  totals=$(for i in $(seq 1 "$REPEATS"); do sed -n 's/.*total=\([0-9.]*\).*/\1/p' "$RUN_DIR/scan-$name-run$i.txt"; done)
  median_total=$(printf '%s\n' "$totals" | median)
  for i in $(seq 1 "$REPEATS"); do
    if grep -q "total=$median_total " "$RUN_DIR/scan-$name-run$i.txt"; then med=$i; break; fi
  done
  w="$RUN_DIR/scan-$name-run$med.txt"
  ttfb=$(sed -n 's/.*ttfb=\([0-9.]*\).*/\1/p' "$w")
  first_row=$(sed -n 's/^first row after: \([0-9.]*\) ms/\1/p' "$w")
  cpu=$(sed -n 's/^server CPU seconds: //p' "$w")
  busy=$(sed -n 's/^machine busy CPU seconds: //p' "$w")
  cat_s=$(median <"$RUN_DIR/scan-$name-cat.txt")
  scan_rows+="| \`GET $path\` | $rows | $(calc '%.1f' "$bytes / 1048576") | $(calc '%.1f' "$ttfb * 1000") | $first_row | $(calc '%.3f' "$median_total") ($(printf '%s\n' "$totals" | awk '{ printf "%s%.3f", (NR > 1 ? ", " : ""), $1 }')) | **$(calc '%.0f' "$rows / $median_total")** | $(calc '%.0f' "$bytes / 1048576 / $median_total") | $cpu / $busy | $cat_s s = $(calc '%.0f' "$rows / $cat_s") rows/s | $(calc '%.1f' "$median_total / $cat_s") | $(sed -n 's/^loadavg before: \([^ ]*\).*/\1/p' "$w") |"$'\n'
  eval "${name}_rate=$(calc '%.0f' "$rows / $median_total")"
}
# dnsrecall keeps one row per record (rdata a one-element array): the
# answer has one row per record under .com.
scan wildcard '/dnsdb/v2/lookup/rrset/name/*.com?limit=0' "$com_records"
hwm_after_wildcard=$(vm_kib VmHWM)
hot_path="/dnsdb/v2/lookup/rdata/ip/${hot_prefix%/*},${hot_prefix#*/}?limit=0"
scan cidr "$hot_path" "$hot_records"
hwm_after_cidr=$(vm_kib VmHWM)
rss_end=$(vm_kib VmRSS)
server_cpu=$(process_cpu_seconds "$SERVER_PID")
stop_server

# --- 4d. diagnostics: TCP_NODELAY, then TCP_NODELAY and a large block cache --------------------
nodelay_rows=""
cache_rows=""
if [ "$DIAG" = 1 ]; then
  gcc -shared -fPIC -O2 -o "$DATA_DIR/nodelay.so" bench/dnsdb/nodelay.c -ldl
  shim=$(realpath "$DATA_DIR/nodelay.so")
  shim_loaded() {
    if ! grep -qF "$shim" "/proc/$SERVER_PID/maps"; then
      echo "the server did not load $shim; see $1" >&2
      exit 1
    fi
  }
  start_dnsdb_server "$RUN_DIR/serve-nodelay.log" "$CONFIG" LD_PRELOAD="$shim"
  shim_loaded "$RUN_DIR/serve-nodelay.log"
  wrk_warm_up
  wrk_round nodelay-
  nodelay_rows=$WRK_ROWS
  stop_server
  {
    cat "$CONFIG"
    printf '\n[store]\n# Diagnostic: a block cache larger than the store.\nblock_cache_mib = %s\n' "$DIAG_CACHE_MIB"
  } >"$CACHE_CONFIG"
  "$BIN" --config "$CACHE_CONFIG" config check >"$RUN_DIR/serve-cache-config.toml"
  start_dnsdb_server "$RUN_DIR/serve-cache.log" "$CACHE_CONFIG" LD_PRELOAD="$shim"
  shim_loaded "$RUN_DIR/serve-cache.log"
  wrk_warm_up
  wrk_round cache-
  cache_rows=$WRK_ROWS
  cache_hwm=$(vm_kib VmHWM)
  stop_server
fi
stop_load_monitor
phase serve end

# --- 5. annotate -------------------------------------------------------------------------
phase annotate start
start_load_monitor annotate
log "annotate: $FLOWS flows over $flow_ips addresses; reference cat"
for i in $(seq 1 "$REPEATS"); do
  start=$(now_ns)
  cat "$FLOWS_FILE" >"$DATA_DIR/cat.out"
  end=$(now_ns)
  echo "$(seconds_between "$start" "$end")"
done >"$RUN_DIR/annotate-cat.txt"
annotate_cat=$(median <"$RUN_DIR/annotate-cat.txt")
# annotate_runs TAG LABEL DNSRECALL_ARGS...: REPEATS runs of `dnsrecall ARGS
# annotate FLOWS` under /usr/bin/time -v; the median run by wall time gives
# ANNOTATE_ROW (a table row), ANNOTATE_RATE (flows/s, wall) and ANNOTATE_LINE.
annotate_runs() {
  local tag=$1 label=$2 i start end walls wall med alog loop rss cpu
  shift 2
  for i in $(seq 1 "$REPEATS"); do
    log "annotate ($label): run $i of $REPEATS"
    alog="$RUN_DIR/annotate-${tag}run$i.log"
    echo "loadavg before: $(loadavg)" >"$alog"
    start=$(now_ns)
    /usr/bin/time -v "$BIN" "$@" annotate "$FLOWS_FILE" >"$DATA_DIR/annotated.csv" 2>>"$alog"
    end=$(now_ns)
    echo "wall seconds (process start to exit): $(seconds_between "$start" "$end")" >>"$alog"
  done
  walls=$(for i in $(seq 1 "$REPEATS"); do sed -n 's/^wall seconds (process start to exit): //p' "$RUN_DIR/annotate-${tag}run$i.log"; done)
  wall=$(printf '%s\n' "$walls" | median)
  for i in $(seq 1 "$REPEATS"); do
    if grep -q "^wall seconds (process start to exit): $wall\$" "$RUN_DIR/annotate-${tag}run$i.log"; then med=$i; break; fi
  done
  alog="$RUN_DIR/annotate-${tag}run$med.log"
  ANNOTATE_LINE=$(grep -m1 '^annotate: ' "$alog")
  loop=$(printf '%s' "$ANNOTATE_LINE" | sed -n 's/.*(\([0-9]*\) flows\/s).*/\1/p')
  ANNOTATE_RATE=$(calc '%.0f' "$FLOWS / $wall")
  rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$alog")
  cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f + %.2f", u, s }' "$alog")
  ANNOTATE_ROW="| $label | **$ANNOTATE_RATE** | $loop | $wall ($(printf '%s' "$walls" | tr '\n' ' ' | sed 's/ $//; s/ /, /g')) | $cpu | $rss MiB | $annotate_cat | $(calc '%.0f' "$wall / $annotate_cat")x | $(sed -n 's/^loadavg before: \([^ ]*\).*/\1/p' "$alog") | [annotate-${tag}run$med.log](annotate-${tag}run$med.log) |"
}
annotate_runs "" "\`dnsrecall --data-dir STORE annotate\` (default store settings)" --data-dir "$STORE_DIR"
annotate_row=$ANNOTATE_ROW
annotate_rate=$ANNOTATE_RATE
annotate_line=$ANNOTATE_LINE
head -n 3 "$DATA_DIR/annotated.csv" >"$RUN_DIR/annotate-sample.csv"
annotate_cache_row=""
if [ "$DIAG" = 1 ]; then
  annotate_runs cache- "diagnostic: \`--config data/serve-cache.toml\` (block_cache_mib = $DIAG_CACHE_MIB)" --config "$CACHE_CONFIG"
  annotate_cache_row=$ANNOTATE_ROW
fi
stop_load_monitor
phase annotate end

# --- 6. summary ------------------------------------------------------------------------------
tf() { awk -F': ' -v key="$1" '$1 ~ key { print $2 }' "$2" | head -1; }
met() { awk "BEGIN { print ($1) ? \"met\" : \"**not met**\" }"; }
mib() { calc '%.0f' "$1 / 1024"; }
if [ "$imported" = 1 ]; then
  import_rows="| **import** | **$(calc '%.0f' "$gen_records / $import_seconds") records/s** ($import_seconds s wall; $(calc '%.2f' "$(jq -r .seconds "$RUN_DIR/import.json")") s by its own timer; $(jq -r .rejected_total "$RUN_DIR/import.json") rejected) | \`/usr/bin/time -v dnsrecall --data-dir STORE import --format cof --json-summary data/cof.ndjson\` |
| import CPU, peak RSS | user $(tf 'User time' "$RUN_DIR/import.time.txt") s, sys $(tf 'System time' "$RUN_DIR/import.time.txt") s ($(tf 'Percent of CPU' "$RUN_DIR/import.time.txt")); $(mib "$(tf 'Maximum resident set size' "$RUN_DIR/import.time.txt")") MiB | same |
| store after import | $du_after_import B = $(calc '%.1f' "$du_after_import / $records") B/record | \`du -sb STORE\` |
| compact | $compact_seconds s | \`dnsrecall --data-dir STORE compact\` |"
else
  import_rows="| import | not measured: store reused (BENCH_DNSDB_REUSE_STORE=1, same data and binary) | |"
fi
lookup_targets() { # lookup_targets TAG
  local conns out
  for conns in $CONNECTIONS; do
    out="$RUN_DIR/wrk-${1}names-c$conns.txt"
    [ -s "$out" ] || continue
    printf '%s\n' "$conns connections: $(printf '%.0f' "$(figure "$out" rps)") lookups/s, p99 $(ms "$(figure "$out" p99_us)") ms → throughput $(met "$(figure "$out" rps) >= 20000"), p99 $(met "$(figure "$out" p99_us) <= 2000")"
  done | paste -sd ';' | sed 's/;/; /g'
}
WRK_HEADER='| route | conns | requests/s | ÷ ping | p50 ms | p90 ms | p99 ms | errors | server CPU µs/req | CPU s server / wrk / others | load 1 min | raw |
|---|---|---|---|---|---|---|---|---|---|---|---|'

{
  cat <<EOF
# DNSDB API benchmark run $(basename "$(dirname "$RUN_DIR")")/dnsdb

\`bench/dnsdb/run.sh\` with RECORDS=$RECORDS SEED=$SEED KEYS=$KEYS FLOWS=$FLOWS FLOW_IPS=$flow_ips
DURATION=$DURATION CONNECTIONS="$CONNECTIONS" REPEATS=$REPEATS DIAG=$DIAG, finished $(date -Is).
Machine: [machine.txt](machine.txt) ($(nproc) cores, shared); binary: [binary.txt](binary.txt); data:
[data-meta.json](data-meta.json). wrk, curl and \`wc\` run on the same $(nproc) cores as the server. The
load average counts the server's own runnable threads too; what other processes used is the
"others" CPU column (machine busy time minus server and wrk) and load-*.txt (top every 10 s).

## Data and import

| figure | value | command |
|---|---|---|
| generated | $gen_records distinct records, $(meta distinct_rrnames) names, $(meta zones) zones; $file_bytes B of COF ($(jq -c .rrtype_records_percent "$DATA_DIR/meta.json" | tr -d '"{}' | sed 's/,/, /g') %) | \`python3 bench/dnsdb/gen.py store --records $RECORDS --seed $SEED --keys $KEYS DIR\` ([generate.txt](generate.txt)) |
| under .com | $com_records records (= rows of \`*.com\`: one row per record), $(meta com_rrsets) distinct (name, type) | |
| in $hot_prefix | $hot_records A records over 65,536 addresses (= rows of the CIDR scan) | |
$import_rows
| **store after compact** | **$du_after_compact B = $(calc '%.1f' "$du_after_compact / $records") B/record** | \`du -sb STORE\` |
| distinct records in the store | $records (generator: $gen_records) | \`dnsrecall export \\| wc -l\` ($export_seconds s) |

Load average: generate $(phase_load generate); import + compact + export $(phase_load import).

## Lookups over HTTP (wrk)

Server: \`dnsrecall --config data/serve.toml serve\` ([serve-config.toml](serve-config.toml): default store
settings (store.block_cache_mib 512 by default); api.dnsdb_max_results = $max_results; one key in api.dnsdb_keys_file).
\`wrk -t$THREADS -cN -d$DURATION --latency -s bench/rotate.lua $BASE -- KEYS_FILE PREFIX KEY\` after a 3 s
warm-up per route; the script sends X-API-Key and Accept: application/x-ndjson; each answer is SAF
(begin, rows, succeeded). Sanity ([sanity.txt](sanity.txt)): rrset/name $sanity_names sampled names, rdata/ip
$sanity_ips sampled addresses answered with their rows; no key → 403.

$WRK_HEADER
$wrk_rows
Server CPU during the wrk part (incl. warm-up): $cpu_after_wrk s; peak RSS after it: $(mib "$hwm_after_wrk") MiB.
EOF
  if [ "$DIAG" = 1 ]; then
    cat <<EOF

### Diagnostics (not the server as shipped)

1. TCP_NODELAY: the same binary and configuration started with \`LD_PRELOAD=data/nodelay.so\`
   (bench/dnsdb/nodelay.c sets TCP_NODELAY on every accepted socket). A DNSDB answer leaves the
   server in two or more writes (headers + begin line, then rows + terminator); with Nagle's
   algorithm on, the second write waits for the client's ACK of the first, which a keep-alive
   client delays by up to 40 ms.

$WRK_HEADER
$nodelay_rows
2. TCP_NODELAY and \`store.block_cache_mib = $DIAG_CACHE_MIB\` ([serve-cache-config.toml](serve-cache-config.toml)),
   more than the whole store, so lookups stop decompressing blocks once warm (peak RSS $(mib "$cache_hwm") MiB).

$WRK_HEADER
$cache_rows
EOF
  fi
  cat <<EOF

## Streamed scans (curl into wc -l)

\`curl -sS -N -H 'X-API-Key: KEY' URL | wc -l\` on the server as shipped, median of $REPEATS timed runs
after a warm-up whose answer was saved and checked (begin, succeeded, row count = generator's;
[scan-wildcard.txt](scan-wildcard.txt), [scan-cidr.txt](scan-cidr.txt)). Reference: \`cat SAVED_ANSWER | wc -l\`
(same bytes, median of $REPEATS). TTFB = curl's time_starttransfer (the begin line); first row = from
the start of curl to the first row read by the shell.

| request | rows | MiB | TTFB ms | first row ms | seconds (runs) | rows/s | MiB/s | CPU s server / machine | reference cat \\| wc -l | ÷ cat time | load 1 min |
|---|---|---|---|---|---|---|---|---|---|---|---|
$scan_rows
Server peak RSS (VmHWM): $(mib "$hwm_after_wrk") MiB after wrk, $(mib "$hwm_after_wildcard") MiB after the wildcard scans,
$(mib "$hwm_after_cidr") MiB after the CIDR scans (VmRSS at the end $(mib "$rss_end") MiB). Server CPU over the
session (wrk and scans): $server_cpu s. Load average during the server part (incl. diagnostics): $(phase_load serve).

## Flow annotation

\`/usr/bin/time -v dnsrecall ... annotate data/flows.csv > data/annotated.csv\`: $FLOWS CSV flows from
bench/annotate/gen.py's generator (destinations: $flow_ips addresses of this store; sources: 50,000
unknown clients in 10.0.0.0/16), default cache (524,288 addresses); median of $REPEATS runs by wall
time. Reference: \`cat flows.csv > file\` (median of $REPEATS).

| run | flows/s (wall, incl. store open) | flows/s (annotate loop) | seconds (runs) | CPU s user + sys | peak RSS | \`cat\` seconds | annotate ÷ cat time | load 1 min | raw |
|---|---|---|---|---|---|---|---|---|---|
$annotate_row
$annotate_cache_row

\`$annotate_line\`

Load average: $(phase_load annotate).

## Targets

* ≥ 20k exact rrset lookups/s with p99 ≤ 2 ms: $(lookup_targets "")
EOF
  if [ "$DIAG" = 1 ]; then
    echo "  (diagnostic 1, TCP_NODELAY: $(lookup_targets nodelay-))"
    echo "  (diagnostic 2, TCP_NODELAY + $DIAG_CACHE_MIB MiB block cache: $(lookup_targets cache-))"
  fi
  cat <<EOF
* ≥ 1M wildcard rows/s streamed: $wildcard_rate rows/s → $(met "$wildcard_rate >= 1000000").
* CIDR /16 scan: $cidr_rate rows/s (no target).
* annotate ≥ 200k flows/s: $annotate_rate flows/s → $(met "$annotate_rate >= 200000").
EOF
} >"$RUN_DIR/summary.md"
cat "$RUN_DIR/summary.md"
