#!/usr/bin/env bash
# Message output benchmark: what the file outputs cost `serve`.
#
# The same Frame Streams file (bench/dnstap/gen.py, realistic mode) is
# replayed with fstrm_replay over loopback TCP into
#   (a) fstrm_capture -w /dev/null        (libfstrm, the C reference receiver)
#   (b) dnsrecall serve, no output         (decode + store)
#   (c) dnsrecall serve + one JSON file output
#   (c') dnsrecall serve as a pure collector (`[dnstap] store = false`: no
#       passive DNS records, as dnstap-receiver keeps none) + one JSON file
#       output
#   (d) dnsrecall serve + every file-ish output (json, text, yaml, a
#       DNS-collector template, a dnstap copy, the metrics line)
#   (e) python dnstap-receiver 4.7 with its JSON file output, fed the first
#       BENCH_OUTPUTS_PY_MSGS messages (it runs at ~10k msg/s; the whole file
#       would take minutes)
# and reports messages/s for each: wall time from the first frame until the
# receiver has everything (dnsrecall: SIGTERM when fstrm_replay ends, exit
# after draining inputs, outputs and the store; every output must have
# written every message and dropped none; dnstap-receiver: its JSON file has
# every line). Ratios: (c)/(b) (target ≥ 0.75, i.e. the JSON output costs at
# most 25 %), (c)/(e) and (c')/(e) (target ≥ 50).
#
# Environment:
#   CARGO_TARGET_DIR        release build dir (default /root/.cache/dnsrecall-target-release)
#   BENCH_OUTPUTS_DIR       work dir (default /root/.cache/dnsrecall-bench-outputs)
#   BENCH_OUTPUTS_MSGS      messages (default 1000000)
#   BENCH_OUTPUTS_PY_MSGS   messages for dnstap-receiver (default 50000)
#   BENCH_OUTPUTS_PORT      first loopback port (default 18700; uses 6)
#   DNSRECALL_TEST_PYTHON   the python with dnstap-receiver (default ~/.cache/dnsrecall-test-venv/bin/python)
#   BENCH_OUTPUTS_BIN       use this dnsrecall binary instead of building the release one
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/dnsrecall-target-release}"
WORK="${BENCH_OUTPUTS_DIR:-/root/.cache/dnsrecall-bench-outputs}"
MSGS="${BENCH_OUTPUTS_MSGS:-1000000}"
PY_MSGS="${BENCH_OUTPUTS_PY_MSGS:-50000}"
PORT="${BENCH_OUTPUTS_PORT:-18700}"
PY="${DNSRECALL_TEST_PYTHON:-$HOME/.cache/dnsrecall-test-venv/bin/python}"
BIN="$CARGO_TARGET_DIR/release/dnsrecall"
FILE="$WORK/bench.dnstap"
PY_FILE="$WORK/bench-py.dnstap"
CT=protobuf:dnstap.Dnstap
mkdir -p "$WORK"
log() { printf '== %s\n' "$*" >&2; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
cpu_rss() { awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2} END { printf "%.2f %.0f\n", u + s, r / 1024 }' "$1"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

if [ ! -s "$FILE" ] || [ "$(cat "$WORK/bench.msgs" 2>/dev/null)" != "$MSGS" ]; then
  log "generating $MSGS messages into $FILE"
  python3 bench/dnstap/gen.py "$FILE" "$MSGS" 20241203 realistic > /dev/null
  echo "$MSGS" > "$WORK/bench.msgs"
fi
if [ ! -s "$PY_FILE" ] || [ "$(cat "$WORK/bench-py.msgs" 2>/dev/null)" != "$PY_MSGS" ]; then
  log "generating $PY_MSGS messages into $PY_FILE"
  python3 bench/dnstap/gen.py "$PY_FILE" "$PY_MSGS" 20241203 realistic > /dev/null
  echo "$PY_MSGS" > "$WORK/bench-py.msgs"
fi
if [ -n "${BENCH_OUTPUTS_BIN:-}" ]; then
  BIN="$BENCH_OUTPUTS_BIN"
else
  log "building the release binary"
  cargo build --release --locked -p dnsrecall >&2
fi
cp "$BIN" "$WORK/dnsrecall"
BIN="$WORK/dnsrecall"
RESULTS="$WORK/results.txt"
: > "$RESULTS"

# (a) fstrm_capture
P=$PORT
/usr/bin/time -v -o "$WORK/capture.time" fstrm_capture -t $CT -a 127.0.0.1 -p "$P" -w /dev/null 2>"$WORK/capture.log" &
CAP=$!
sleep 0.5
load=$(loadavg)
start=$(now_ns)
fstrm_replay -t $CT -r "$FILE" -a 127.0.0.1 -p "$P"
capture_s=$(secs "$start" "$(now_ns)")
kill -INT "$(pgrep -P $CAP fstrm_capture)" 2>/dev/null || true
wait $CAP || true
read -r cpu rss < <(cpu_rss "$WORK/capture.time")
echo "fstrm_capture -w /dev/null|$capture_s|$(rate "$MSGS" "$capture_s")|$cpu|$rss|$load" >> "$RESULTS"

# (b)-(d) dnsrecall serve with a config
serve_run() {
  local slug="$1" label="$2" config="$3" dnstap_extra="${4:-}" listen=$((PORT + 1)) tap=$((PORT + 2))
  local dir="$WORK/serve-$slug"
  rm -rf "$dir"; mkdir -p "$dir"
  printf '[dnstap]\ntcp = "127.0.0.1:%s"\n%s\n%s' "$tap" "$dnstap_extra" "$config" > "$dir/config.toml"
  /usr/bin/time -v -o "$dir/time" "$BIN" --config "$dir/config.toml" --data-dir "$dir/data" \
    serve --listen 127.0.0.1:$listen 2>"$dir/serve.log" &
  local srv=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$listen/info" >/dev/null && break; sleep 0.1; done
  load=$(loadavg)
  local start; start=$(now_ns)
  fstrm_replay -t $CT -r "$FILE" -a 127.0.0.1 -p "$tap"
  curl -sf "http://127.0.0.1:$listen/metrics" > "$dir/metrics.txt" || true
  kill -TERM "$(pgrep -P $srv dnsrecall)" 2>/dev/null || true
  wait $srv || true
  local s; s=$(secs "$start" "$(now_ns)")
  read -r cpu rss < <(cpu_rss "$dir/time")
  # Every output wrote every message: line counts (YAML: documents).
  for f in "$dir"/*.json "$dir"/*.txt; do
    [ -e "$f" ] || continue
    case "$f" in *metrics.txt) continue ;; esac
    n=$(wc -l < "$f")
    [ "$n" = "$MSGS" ] || { log "INCOMPLETE: $f has $n lines, want $MSGS"; grep output_dropped "$dir/metrics.txt" >&2 || true; exit 1; }
  done
  if [ -e "$dir/all.yaml" ]; then
    n=$(grep -c '^---$' "$dir/all.yaml")
    [ "$n" = "$MSGS" ] || { log "INCOMPLETE: yaml has $n documents"; exit 1; }
  fi
  echo "dnsrecall serve, $label|$s|$(rate "$MSGS" "$s")|$cpu|$rss|$load" >> "$RESULTS"
}
file_output() { printf '[[outputs]]\nkind = "file"\nformat = "%s"\npath = "%s"\nqueue_size = 1000000\nflush_timeout_secs = 300\n%s\n' "$1" "$2" "${3:-}"; }

serve_run none "no output" ""
serve_run json "one JSON file output" "$(file_output json "$WORK/serve-json/all.json")"
serve_run collector "collector (store = false), one JSON file output" \
  "$(file_output json "$WORK/serve-collector/all.json")" "store = false"
ALL="$WORK/serve-all"
serve_run all "all file outputs" "$(file_output json "$ALL/all.json")
$(file_output text "$ALL/all.txt")
$(file_output yaml "$ALL/all.yaml")
$(file_output text "$ALL/template.txt" 'template = "timestamp identity operation rcode queryip queryport family protocol length-unit qname qtype latency"')
$(file_output dnstap "$ALL/copy.fstrm")
[[outputs]]
kind = \"metrics\"
path = \"$ALL/metrics.log\"
interval = 1
"

# (e) python dnstap-receiver, JSON file output
P=$((PORT + 3))
PYDIR="$WORK/python"
rm -rf "$PYDIR"; mkdir -p "$PYDIR"
cat > "$PYDIR/dnstap.conf" <<EOF
trace:
  verbose: false
  file: $PYDIR/trace.log
web-api:
  enable: false
output:
  stdout:
    enable: false
  file:
    enable: true
    format: json
    file: $PYDIR/all.json
    file-max-size: 10000M
    file-count: 1
EOF
/usr/bin/time -v -o "$PYDIR/time" "$PY" -c 'from dnstap_receiver.receiver import start_receiver; start_receiver()' \
  -c "$PYDIR/dnstap.conf" -l 127.0.0.1 -p "$P" >/dev/null 2>"$PYDIR/stderr.log" &
PYPID=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$P) 2>/dev/null && break; sleep 0.1; done
load=$(loadavg)
start=$(now_ns)
fstrm_replay -t $CT -r "$PY_FILE" -a 127.0.0.1 -p "$P"
# Bounded wait (10 minutes): a receiver that lost messages must not hang the script.
for _ in $(seq 1 12000); do
  [ "$(wc -l < "$PYDIR/all.json" 2>/dev/null || echo 0)" -ge "$PY_MSGS" ] && break
  sleep 0.05
done
py_s=$(secs "$start" "$(now_ns)")
[ "$(wc -l < "$PYDIR/all.json" 2>/dev/null || echo 0)" -ge "$PY_MSGS" ] || { echo "dnstap-receiver wrote fewer than $PY_MSGS lines" >&2; exit 1; }
# $PYPID is /usr/bin/time: stop the receiver it runs, not only time (it
# ignores SIGTERM: SIGINT, then SIGKILL).
pkill -INT -P "$PYPID" 2>/dev/null || true
sleep 1
pkill -KILL -P "$PYPID" 2>/dev/null || true
wait "$PYPID" || true
read -r cpu rss < <(cpu_rss "$PYDIR/time")
echo "python dnstap-receiver 4.7, JSON file ($PY_MSGS msgs)|$py_s|$(rate "$PY_MSGS" "$py_s")|$cpu|$rss|$load" >> "$RESULTS"

{
  echo "file: $FILE ($MSGS messages, $(du -m "$FILE" | cut -f1) MiB); dnstap-receiver: first $PY_MSGS of the same generator"
  echo "| receiver | wall s | msg/s | CPU s | peak RSS MiB | load before (1/5/15 min) |"
  echo "|---|---|---|---|---|---|"
  awk -F'|' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$RESULTS"
  base=$(grep '^dnsrecall serve, no output|' "$RESULTS" | cut -d'|' -f3)
  json=$(grep '^dnsrecall serve, one JSON' "$RESULTS" | cut -d'|' -f3)
  collector=$(grep '^dnsrecall serve, collector' "$RESULTS" | cut -d'|' -f3)
  all=$(grep '^dnsrecall serve, all file' "$RESULTS" | cut -d'|' -f3)
  py=$(grep '^python' "$RESULTS" | cut -d'|' -f3)
  awk -v b="$base" -v j="$json" -v c="$collector" -v a="$all" -v p="$py" 'BEGIN {
    printf "JSON output / no output: %.2f (cost %.0f %%); all file outputs / no output: %.2f\n", j / b, 100 * (1 - j / b), a / b
    printf "dnsrecall with the JSON output / dnstap-receiver: %.0fx\n", j / p
    printf "dnsrecall as a collector with the JSON output / dnstap-receiver: %.0fx\n", c / p }'
} | tee "$WORK/result.md"
