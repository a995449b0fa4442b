#!/usr/bin/env bash
# Statistics cost end to end (issue 12's target: statistics on cost at most
# 15 % of ingest): the same dnstap file replayed by fstrm_replay over
# loopback TCP into `dnsrecall serve --dnstap-tcp` (protobuf decode,
# pipeline, RocksDB store) without and with `[stats]`, runs interleaved
# (off, on, off, on, ...; the reference run is the one without). Timing as
# bench/dnstap/run.sh: from the start of fstrm_replay until serve has
# exited after SIGTERM, sent the moment fstrm_replay ends (so the drain of
# every queue, the statistics' included, is inside the time). Each run must
# store as many entries as the first; with [stats], serve's log must show
# every message counted and none dropped.
#
# Usage: bench/stats/serve.sh [ROUNDS]
# Environment:
#   CARGO_TARGET_DIR   release build dir (default /root/.cache/dnsrecall-target-release)
#   BENCH_STATS_DIR    work dir (default /root/.cache/dnsrecall-bench-stats)
#   BENCH_STATS_MSGS   messages in the file (default 1000000)
#   BENCH_STATS_MODE   bench/dnstap/gen.py mode: realistic (default) or unique
#   BENCH_STATS_PORT   first loopback port (default 18700; uses 2)
#   BENCH_STATS_BIN    use this dnsrecall binary instead of building one
#   BENCH_STATS_EXTRA  more lines for the [stats] section of the "on" runs
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/dnsrecall-target-release}"
WORK="${BENCH_STATS_DIR:-/root/.cache/dnsrecall-bench-stats}"
MSGS="${BENCH_STATS_MSGS:-1000000}"
MODE="${BENCH_STATS_MODE:-realistic}"
PORT="${BENCH_STATS_PORT:-18700}"
FILE="$WORK/bench-$MODE-$MSGS.dnstap"
CT=protobuf:dnstap.Dnstap
mkdir -p "$WORK"
log() { printf '== %s\n' "$*" >&2; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
cpu_rss() { awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2} END { printf "%.2f %.0f\n", u + s, r / 1024 }' "$1"; }

if [ ! -s "$FILE" ]; then
  log "generating $MSGS messages ($MODE) into $FILE"
  python3 bench/dnstap/gen.py "$FILE" "$MSGS" 20241122 "$MODE" >/dev/null
fi
if [ -n "${BENCH_STATS_BIN:-}" ]; then
  SRC="$BENCH_STATS_BIN"
else
  log "building the release binary"
  nice cargo build -q --release --locked -p dnsrecall >&2
  SRC="$CARGO_TARGET_DIR/release/dnsrecall"
fi
# A copy, so a rebuild in the shared target dir cannot change it mid-run.
BIN="$WORK/dnsrecall"
cp "$SRC" "$BIN"

printf '# statistics off\n' > "$WORK/off.toml"
printf "# statistics on, defaults (64 MiB bound, windows)\n[stats]\n${BENCH_STATS_EXTRA:-}" > "$WORK/on.toml"

# One run: prints "wall_s cpu_s rss_mib stored".
run() {
  local mode=$1
  local data="$WORK/data-$mode"
  rm -rf "$data"
  /usr/bin/time -v -o "$WORK/$mode.time" "$BIN" --config "$WORK/$mode.toml" --data-dir "$data" \
    serve --listen "127.0.0.1:$PORT" --dnstap-tcp "127.0.0.1:$((PORT + 1))" 2>"$WORK/$mode.log" &
  local pid=$!
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/info" >/dev/null && break; sleep 0.05; done
  local start; start=$(now_ns)
  fstrm_replay -t $CT -r "$FILE" -a 127.0.0.1 -p "$((PORT + 1))"
  kill -TERM "$(pgrep -P "$pid" dnsrecall)" 2>/dev/null || true
  wait "$pid" || true
  local wall; wall=$(secs "$start" "$(now_ns)")
  local plain; plain=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/$mode.log")
  local stored; stored=$(grep -o 'store writer finished.*' <<<"$plain" | grep -o 'entries=[0-9]*' | cut -d= -f2)
  if [ "$mode" = on ]; then
    local counted dropped
    counted=$(grep -o 'statistics output finished.*' <<<"$plain" | grep -o 'counted=[0-9]*' | cut -d= -f2)
    dropped=$(grep -o 'statistics output finished.*' <<<"$plain" | grep -o 'dropped=[0-9]*' | cut -d= -f2)
    if [ "${counted:-0}" != "$MSGS" ] || [ "${dropped:-1}" != 0 ]; then
      log "statistics counted ${counted:-?} of $MSGS messages, dropped ${dropped:-?}"
      exit 1
    fi
  fi
  read -r cpu rss < <(cpu_rss "$WORK/$mode.time")
  echo "$wall $cpu $rss ${stored:-0}"
}

echo "== $(date -u +%FT%TZ) $(uname -m) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "file: $FILE ($MODE, $MSGS messages, $(du -m "$FILE" | cut -f1) MiB)"
echo "| round | stats | wall s | msg/s | CPU s | peak RSS MiB | entries stored |"
echo "|---|---|---|---|---|---|---|"
first_stored=""
sum_off=0; sum_on=0
for round in $(seq 1 "$rounds"); do
  for mode in off on; do
    run "$mode" > "$WORK/run.out"
    read -r wall cpu rss stored < "$WORK/run.out"
    [ -z "$first_stored" ] && first_stored=$stored
    if [ "$stored" != "$first_stored" ]; then
      log "run stored $stored entries, the first stored $first_stored"
      exit 1
    fi
    rate=$(awk -v n="$MSGS" -v s="$wall" 'BEGIN { printf "%.0f", n / s }')
    echo "| $round | $mode | $wall | $rate | $cpu | $rss | $stored |"
    if [ "$mode" = off ]; then sum_off=$(awk -v a="$sum_off" -v b="$wall" 'BEGIN { print a + b }')
    else sum_on=$(awk -v a="$sum_on" -v b="$wall" 'BEGIN { print a + b }'); fi
  done
done
awk -v off="$sum_off" -v on="$sum_on" -v n="$MSGS" -v r="$rounds" 'BEGIN {
  printf "total over %d rounds: without %.0f msg/s, with %.0f msg/s; with/without = %.3f (cost %.1f %%)\n",
    r, n * r / off, n * r / on, off / on, (1 - off / on) * 100 }'
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
