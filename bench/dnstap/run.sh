#!/usr/bin/env bash
# dnstap ingest benchmark: the same Frame Streams file replayed with
# fstrm_replay over loopback TCP into
#   (a) fstrm_capture (libfstrm, the C reference receiver) writing /dev/null, and
#   (b) dnsrecall serve --dnstap-tcp, decoding and storing records;
# reports messages/s (wall time until the receiver has everything), the ratio,
# CPU time and peak RSS of each receiver; then the decode-only criterion bench.
#
# "Has everything": fstrm_capture has received FINISH; dnsrecall was sent
# SIGTERM the moment fstrm_replay ended and has exited after draining its
# queues and flushing the de-duplication cache and the store; its log must
# show as many entries as an `import` of the same file stores.
#
# Environment:
#   CARGO_TARGET_DIR    release build dir (default /root/.cache/dnsrecall-target-release)
#   BENCH_DNSTAP_DIR    work dir (default /root/.cache/dnsrecall-bench-dnstap)
#   BENCH_DNSTAP_MSGS   messages to generate (default 2000000)
#   BENCH_DNSTAP_MODE   realistic (default: Zipf names, stable answers) or
#                       unique (random addresses: nearly every record new)
#   BENCH_DNSTAP_PORT   first loopback port (default 18600; uses 3)
#   BENCH_SKIP_CRITERION=1 skips the criterion bench
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/dnsrecall-target-release}"
WORK="${BENCH_DNSTAP_DIR:-/root/.cache/dnsrecall-bench-dnstap}"
MSGS="${BENCH_DNSTAP_MSGS:-2000000}"
PORT="${BENCH_DNSTAP_PORT:-18600}"
BIN="$CARGO_TARGET_DIR/release/dnsrecall"
MODE="${BENCH_DNSTAP_MODE:-realistic}"
FILE="$WORK/bench-$MODE.dnstap"
CT=protobuf:dnstap.Dnstap
mkdir -p "$WORK"
log() { printf '== %s\n' "$*" >&2; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# "cpu_seconds peak_rss_mib" from a GNU time -v log
cpu_rss() { awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2} END { printf "%.2f %.0f\n", u + s, r / 1024 }' "$1"; }

if [ ! -s "$FILE" ] || [ "$(cat "$WORK/bench-$MODE.msgs" 2>/dev/null)" != "$MSGS" ]; then
  log "generating $MSGS messages ($MODE) into $FILE"
  python3 bench/dnstap/gen.py "$FILE" "$MSGS" 20241122 "$MODE" > "$WORK/bench-$MODE.records"
  echo "$MSGS" > "$WORK/bench-$MODE.msgs"
  rm -f "$WORK/import-$MODE.json"
fi
log "building the release binary"
cargo build --release --locked -p dnsrecall >&2

# The number of observations dnsrecall stores for this file, and the import rate.
if [ ! -s "$WORK/import-$MODE.json" ] || [ "${BENCH_REIMPORT:-0}" = 1 ]; then
rm -rf "$WORK/import-data"
start=$(now_ns)
"$BIN" --data-dir "$WORK/import-data" import --json-summary "$FILE" > "$WORK/import-$MODE.json" 2>/dev/null
import_s=$(secs "$start" "$(now_ns)"); echo "$import_s" > "$WORK/import-$MODE.secs"
fi
import_s=$(cat "$WORK/import-$MODE.secs")
TARGET=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$WORK/import-$MODE.json")
log "import: $TARGET records in ${import_s}s"

# (a) fstrm_capture
P1=$PORT
/usr/bin/time -v -o "$WORK/capture.time" fstrm_capture -t $CT -a 127.0.0.1 -p "$P1" -w /dev/null 2>"$WORK/capture.log" &
CAP=$!
sleep 0.5
start=$(now_ns)
fstrm_replay -t $CT -r "$FILE" -a 127.0.0.1 -p "$P1"
capture_s=$(secs "$start" "$(now_ns)")
kill -INT "$(pgrep -P $CAP fstrm_capture)" 2>/dev/null || true
wait $CAP || true
read -r capture_cpu capture_rss < <(cpu_rss "$WORK/capture.time")

# (b) dnsrecall serve
P2=$((PORT + 1)); P3=$((PORT + 2))
rm -rf "$WORK/serve-data"
/usr/bin/time -v -o "$WORK/serve.time" "$BIN" --data-dir "$WORK/serve-data" serve --listen 127.0.0.1:$P2 \
  --dnstap-tcp 127.0.0.1:$P3 2>"$WORK/serve.log" &
SRV=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$P2/info" >/dev/null && break; sleep 0.1; done
start=$(now_ns)
fstrm_replay -t $CT -r "$FILE" -a 127.0.0.1 -p "$P3"
replay_done=$(secs "$start" "$(now_ns)")
kill -TERM "$(pgrep -P $SRV dnsrecall)" 2>/dev/null || true
wait $SRV || true
serve_s=$(secs "$start" "$(now_ns)")
read -r serve_cpu serve_rss < <(cpu_rss "$WORK/serve.time")
plain_log() { sed 's/\x1b\[[0-9;]*m//g' "$WORK/serve.log"; }
plain_log | grep -o 'dnstap summary.*' >&2 || true
plain_log | grep -o 'dedup.*' >&2 || true
stored=$(plain_log | grep -o 'store writer finished.*' | grep -o 'entries=[0-9]*' | cut -d= -f2)
writes=$(plain_log | grep -o 'store writer finished.*' | grep -o 'writes=[0-9]*' | cut -d= -f2)
if [ "${stored:-0}" != "$TARGET" ]; then
  log "INCOMPLETE: dnsrecall stored ${stored:-?} entries, import stores $TARGET"
  exit 1
fi

rate() { awk -v n="$MSGS" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
capture_rate=$(rate "$capture_s"); serve_rate=$(rate "$serve_s"); import_rate=$(rate "$import_s")
ratio=$(awk -v a="$serve_rate" -v b="$capture_rate" 'BEGIN { printf "%.2f", a / b }')
{
  echo "file: $FILE ($MODE, $MSGS messages, $(du -m "$FILE" | cut -f1) MiB, $TARGET records; $writes store writes after de-duplication)"
  echo "| receiver | wall s | msg/s | CPU s | peak RSS MiB |"
  echo "|---|---|---|---|---|"
  echo "| fstrm_capture -w /dev/null | $capture_s | $capture_rate | $capture_cpu | $capture_rss |"
  echo "| dnsrecall serve --dnstap-tcp (stored) | $serve_s | $serve_rate | $serve_cpu | $serve_rss |"
  echo "ratio dnsrecall / fstrm_capture: $ratio (fstrm_replay finished after ${replay_done}s)"
  echo "dnsrecall import of the same file: ${import_s}s, $import_rate msg/s"
} | tee "$WORK/result.md"

if [ "${BENCH_SKIP_CRITERION:-0}" != 1 ]; then
  log "criterion decode-only bench (200k frames of the file)"
  DNSRECALL_BENCH_DNSTAP="$FILE" CARGO_TARGET_DIR="$CARGO_TARGET_DIR-criterion" cargo bench --locked -p dnsrecall --bench dnstap_decode -- --noplot 2>&1 | tee "$WORK/criterion.log" | grep -E 'time:|thrpt:'
fi
