#!/usr/bin/env bash
# Foundation benchmark, part 2: HTTP query throughput and latency.
#
#   bench/query.sh             # needs the store bench/import.sh left behind
#
# Starts `dnsrecall serve --listen 127.0.0.1:$BENCH_PORT` on the imported
# store and, with wrk (2 threads, 10 s, --latency) at 1 (one thread), 16 and
# 64 connections, measures:
#   * reference: GET /info (the cheapest route), through the same Lua script;
#   * GET /query/NAME rotating over every generated rrname (names.txt);
#   * GET /query/IP rotating over every generated A/AAAA address (ips.txt);
# each after a 3 s unrecorded warm-up, reporting requests/s, p50/p90/p99,
# the ratio to the /info reference, and the CPU seconds of the server, of wrk
# and of every other process on the machine during each run.
# Before the runs, 200 names and 200 addresses are asked with curl to check
# the answers are not empty. Peak RSS of the server is VmHWM from
# /proc/PID/status just before it is stopped. wrk and the server share the
# machine's cores; the summary says how many.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
trap 'stop_server; stop_load_monitor' EXIT

describe_machine
start_load_monitor query
if ! command -v wrk >/dev/null; then
  log "installing wrk (Debian package)"
  apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi
if [ ! -x "$BIN" ] || [ ! -d "$STORE_DIR" ] || [ ! -s "$DATA_DIR/names.txt" ]; then
  echo "no imported store in $STORE_DIR: run bench/import.sh first" >&2
  exit 2
fi

BASE="http://127.0.0.1:$BENCH_PORT"
DURATION="${BENCH_DURATION:-10s}"
THREADS=2
CONNECTIONS="${BENCH_CONNECTIONS:-1 16 64}"
echo "info" >"$DATA_DIR/info-path.txt"

log "starting dnsrecall serve on $BASE"
start_server "$RUN_DIR/serve-query.log"
curl -sf "$BASE/info" | jq . >"$RUN_DIR/info.json"

# --- answers are real --------------------------------------------------------
check_hits() {
  local file=$1 label=$2 hits=0 asked=0 key body
  while read -r key; do
    asked=$((asked + 1))
    body=$(curl -sf "$BASE/query/$key" || true)
    if [ -n "$body" ] && printf '%s' "$body" | grep -qF "$key"; then
      hits=$((hits + 1))
    fi
  done < <(head -n 200 "$file")
  echo "$label: $hits of $asked sampled keys answered with records containing the key"
}
{
  check_hits "$DATA_DIR/names.txt" "names"
  check_hits "$DATA_DIR/ips.txt" "ips"
  echo "answer sizes (bytes) of the first 5 names:"
  head -n 5 "$DATA_DIR/names.txt" | while read -r key; do
    printf '  %s %s\n' "$key" "$(curl -sf "$BASE/query/$key" | wc -c)"
  done
} >"$RUN_DIR/query-sanity.txt"
cat "$RUN_DIR/query-sanity.txt" >&2

# --- wrk runs ----------------------------------------------------------------
# Busy CPU seconds of the whole machine so far (all cores, /proc/stat).
machine_busy_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

run_wrk() { # run_wrk NAME CONNECTIONS DURATION KEYS_FILE PREFIX
  local name=$1 conns=$2 duration=$3 keys=$4 prefix=$5 threads cpu_before cpu_after busy_before busy_after out
  out="$RUN_DIR/wrk-$name-c$conns.txt"
  threads=$((conns < THREADS ? conns : THREADS))
  cpu_before=$(process_cpu_seconds "$SERVER_PID")
  busy_before=$(machine_busy_seconds)
  {
    echo "\$ wrk -t$threads -c$conns -d$duration --latency -s bench/rotate.lua $BASE -- $keys $prefix"
    /usr/bin/time -f 'wrk CPU seconds: %U user %S system' \
      wrk -t"$threads" -c"$conns" -d"$duration" --latency -s bench/rotate.lua "$BASE" -- "$keys" "$prefix"
  } >"$out" 2>&1
  cpu_after=$(process_cpu_seconds "$SERVER_PID")
  busy_after=$(machine_busy_seconds)
  echo "server CPU seconds during the run: $(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN { printf "%.2f", b - a }')" >>"$out"
  echo "machine busy CPU seconds during the run (all processes): $(awk -v a="$busy_before" -v b="$busy_after" 'BEGIN { printf "%.2f", b - a }')" >>"$out"
}
figure() { # figure FILE FIELD
  sed -n 's/^JSON //p' "$1" | jq -r ".$2"
}

log "warm-up (3 s each, not recorded)"
wrk -t"$THREADS" -c16 -d3s -s bench/rotate.lua "$BASE" -- "$DATA_DIR/names.txt" /query/ >/dev/null 2>&1
wrk -t"$THREADS" -c16 -d3s -s bench/rotate.lua "$BASE" -- "$DATA_DIR/ips.txt" /query/ >/dev/null 2>&1

rows=""
env_lines=""
for conns in $CONNECTIONS; do
  for route in info names ips; do
    case $route in
      info) keys="$DATA_DIR/info-path.txt" prefix=/ ;;
      names) keys="$DATA_DIR/names.txt" prefix=/query/ ;;
      ips) keys="$DATA_DIR/ips.txt" prefix=/query/ ;;
    esac
    log "wrk $route, $conns connections, $DURATION"
    run_wrk "$route" "$conns" "$DURATION" "$keys" "$prefix"
  done
  info_rps=$(figure "$RUN_DIR/wrk-info-c$conns.txt" rps)
  for route in info names ips; do
    out="$RUN_DIR/wrk-$route-c$conns.txt"
    rps=$(figure "$out" rps)
    p50=$(figure "$out" p50_us)
    p90=$(figure "$out" p90_us)
    p99=$(figure "$out" p99_us)
    requests=$(figure "$out" requests)
    errors=$(sed -n 's/^JSON //p' "$out" | jq '.connect_errors + .read_errors + .write_errors + .status_errors + .timeouts')
    cpu=$(sed -n 's/^server CPU seconds during the run: //p' "$out")
    busy=$(sed -n 's/^machine busy CPU seconds during the run (all processes): //p' "$out")
    wrk_cpu=$(sed -n 's/^wrk CPU seconds: \([0-9.]*\) user \([0-9.]*\) system/\1 \2/p' "$out" | awk '{ printf "%.2f", $1 + $2 }')
    others=$(awk -v b="$busy" -v s="$cpu" -v w="$wrk_cpu" 'BEGIN { o = b - s - w; printf "%.1f", (o < 0 ? 0 : o) }')
    ratio=$(awk -v a="$rps" -v b="$info_rps" 'BEGIN { printf "%.3f", a / b }')
    cpu_per_request=$(awk -v c="$cpu" -v n="$requests" 'BEGIN { printf "%.1f", (n > 0 ? c / n * 1e6 : 0) }')
    case $route in
      info) path="/info" ;;
      names) path="/query/NAME (names.txt, $(wc -l <"$DATA_DIR/names.txt") keys)" ;;
      ips) path="/query/IP (ips.txt, $(wc -l <"$DATA_DIR/ips.txt") keys)" ;;
    esac
    rows+="| $path | $conns | $(printf '%.0f' "$rps") | $ratio | $(awk -v v="$p50" 'BEGIN { printf "%.2f", v / 1000 }') | $(awk -v v="$p90" 'BEGIN { printf "%.2f", v / 1000 }') | $(awk -v v="$p99" 'BEGIN { printf "%.2f", v / 1000 }') | $errors | $cpu_per_request | $cpu / $wrk_cpu / $others | [wrk-$route-c$conns.txt](wrk-$route-c$conns.txt) |"$'\n'
    env_lines+="${route}_c${conns}_rps=$rps"$'\n'"${route}_c${conns}_p50_us=$p50"$'\n'"${route}_c${conns}_p99_us=$p99"$'\n'"${route}_c${conns}_errors=$errors"$'\n'
  done
done

hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")
rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
server_cpu=$(process_cpu_seconds "$SERVER_PID")
stop_server

{
  printf '%s' "$env_lines"
  echo "server_vmhwm_kib=$hwm_kib"
  echo "server_vmrss_kib=$rss_kib"
  echo "server_cpu_seconds=$server_cpu"
} >"$RUN_DIR/query.env"

# Targets: ≥ 20k queries/s with p99 ≤ 2 ms, for names and for IPs, at each
# connection count.
targets=""
for conns in $CONNECTIONS; do
  [ "$conns" -gt 1 ] || continue # one connection is the latency reference
  for route in names ips; do
    out="$RUN_DIR/wrk-$route-c$conns.txt"
    verdict=$(awk -v r="$(figure "$out" rps)" -v p="$(figure "$out" p99_us)" \
      'BEGIN { print (r >= 20000 && p <= 2000) ? "met" : "**not met**" }')
    targets+="$route at $conns connections: $verdict; "
  done
done

cat >"$RUN_DIR/summary-query.md" <<EOF
## Queries (bench/query.sh)

Server: \`dnsrecall --data-dir STORE serve --listen 127.0.0.1:$BENCH_PORT\` (default configuration: 64 MiB block cache).
Load: \`wrk -t$THREADS -cN -d$DURATION --latency -s bench/rotate.lua $BASE -- KEYS_FILE PREFIX\`
(\`-t1\` for one connection), after a 3 s warm-up. wrk and the server share the same $(nproc) cores,
so every figure here is with the load generator competing for CPU; the "other processes" CPU column is
what the rest of the (shared) machine used during the same 10 s (/proc/stat busy time minus server
and wrk), out of $(nproc) × 10 s. Reference: \`/info\` through the same script.

| route | connections | requests/s | ÷ /info | p50 ms | p90 ms | p99 ms | errors | server CPU µs/request | CPU s: server / wrk / other processes | raw |
|---|---|---|---|---|---|---|---|---|---|---|
$rows
Server peak RSS (VmHWM before stop): $(awk -v v="$hwm_kib" 'BEGIN { printf "%.0f", v / 1024 }') MiB (VmRSS $(awk -v v="$rss_kib" 'BEGIN { printf "%.0f", v / 1024 }') MiB); server CPU over the whole session $server_cpu s.

Load on the shared machine during the script: [load-query.txt](load-query.txt).

Sanity ([query-sanity.txt](query-sanity.txt)): $(head -n 2 "$RUN_DIR/query-sanity.txt" | tr '\n' ';')

Targets (≥ 20k queries/s with p99 ≤ 2 ms): $targets
EOF
assemble_summary
cat "$RUN_DIR/summary-query.md"
