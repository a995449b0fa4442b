#!/usr/bin/env bash
# Network outputs benchmark: the same dnstap file (bench/dnstap/gen.py)
# replayed with fstrm_replay into
#   (a) fstrm_capture -w /dev/null (the reference receiver),
#   (b) dnsrecall serve --dnstap-tcp, storing, no output,
#   (c) the same with every network output on: tcp (NDJSON to a socat sink),
#       syslog (RFC 5424 over UDP to a socat sink), dnstap relay (to
#       fstrm_capture -w /dev/null), nats (core, 127.0.0.1:4222), postgres
#       (COPY into a scratch table of database `test`) and kafka (tansu, when
#       ~/.cargo/bin/tansu exists).
# Wall time runs from the start of fstrm_replay until the store and every
# output have accounted for every message (written + dropped == messages, read
# from /metrics; outputs drop by design when their peer is slower than the
# traffic, so the drops are reported per output), then SIGTERM and exit.
#
# Environment:
#   CARGO_TARGET_DIR     release build dir (default /root/.cache/dnsrecall-target-release)
#   BENCH_OUTPUTS_DIR    work dir (default /root/.cache/dnsrecall-bench-outputs)
#   BENCH_OUTPUTS_MSGS   messages (default 500000)
#   BENCH_OUTPUTS_QUEUE  queue_size of each output (default 10000)
#   BENCH_OUTPUTS_PORT   first loopback port (default 18700; uses 8)
#   BENCH_OUTPUTS_BIN    use this dnsrecall binary instead of building the release one
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/dnsrecall-target-release}"
WORK="${BENCH_OUTPUTS_DIR:-/root/.cache/dnsrecall-bench-outputs}"
MSGS="${BENCH_OUTPUTS_MSGS:-500000}"
QUEUE="${BENCH_OUTPUTS_QUEUE:-10000}"
PORT="${BENCH_OUTPUTS_PORT:-18700}"
BIN="$CARGO_TARGET_DIR/release/dnsrecall"
FILE="$WORK/bench.dnstap"
CT=protobuf:dnstap.Dnstap
TABLE="bench_outputs_$$"
TOPIC="bench-outputs-$$"
mkdir -p "$WORK"
log() { printf '== %s\n' "$*" >&2; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
rate() { awk -v n="$MSGS" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
cpu_rss() { awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2} END { printf "%.2f %.0f\n", u + s, r / 1024 }' "$1"; }
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  psql -h 127.0.0.1 -d test -qAtc "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ ! -s "$FILE" ] || [ "$(cat "$WORK/bench.msgs" 2>/dev/null)" != "$MSGS" ]; then
  log "generating $MSGS messages into $FILE"
  python3 bench/dnstap/gen.py "$FILE" "$MSGS" 20241122 realistic > "$WORK/bench.records"
  echo "$MSGS" > "$WORK/bench.msgs"
fi
if [ -n "${BENCH_OUTPUTS_BIN:-}" ]; then
  BIN="$BENCH_OUTPUTS_BIN"
else
  log "building the release binary"
  cargo build --release --locked -p dnsrecall >&2
fi
echo "load before: $(cat /proc/loadavg)" > "$WORK/load.txt"

# (a) fstrm_capture
P=$PORT
fstrm_capture -t $CT -a 127.0.0.1 -p "$P" -w /dev/null 2>/dev/null &
CAP=$!; PIDS+=("$CAP"); sleep 0.5
start=$(now_ns)
fstrm_replay -t $CT -r "$FILE" -a 127.0.0.1 -p "$P"
capture_s=$(secs "$start" "$(now_ns)")
kill -INT "$CAP" 2>/dev/null || true; wait "$CAP" 2>/dev/null || true

# Sum of a metric's samples whose line contains $2 (e.g. a label).
metric() { curl -s "http://127.0.0.1:$API/metrics" | awk -v n="$1" -v f="$2" '$1 ~ "^"n"({|$)" && index($1, f) { s += $2 } END { printf "%d", s }'; }

# run NAME CONFIG: serve with CONFIG, replay, wait until every output has
# accounted for every message, stop; prints "wall cpu rss".
run() {
  local name=$1 config=$2 outputs=$3
  API=$((PORT + 1)); local TAP=$((PORT + 2))
  rm -rf "$WORK/data-$name"
  /usr/bin/time -v -o "$WORK/$name.time" "$BIN" --config "$config" --data-dir "$WORK/data-$name" serve \
    --listen 127.0.0.1:$API --dnstap-tcp 127.0.0.1:$TAP 2>"$WORK/$name.log" &
  local srv=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$API/info" >/dev/null && break; sleep 0.1; done
  local start; start=$(now_ns)
  fstrm_replay -t $CT -r "$FILE" -a 127.0.0.1 -p "$TAP"
  if [ "$outputs" -gt 0 ]; then
    for _ in $(seq 1 1200); do
      local accounted
      accounted=$(( $(metric dnsrecall_output_written_total "") + $(metric dnsrecall_output_dropped_total "") ))
      [ "$accounted" -ge $((MSGS * outputs)) ] && break
      sleep 0.1
    done
    [ "$accounted" -ge $((MSGS * outputs)) ] || log "TIMEOUT: outputs accounted for $accounted of $((MSGS * outputs)) messages after 120 s"
    curl -s "http://127.0.0.1:$API/metrics" | grep -E '^dnsrecall_output_(written|dropped)_total' > "$WORK/$name.outputs.txt" || true
  fi
  kill -TERM "$(pgrep -P $srv dnsrecall)" 2>/dev/null || true
  wait "$srv" || true
  local wall; wall=$(secs "$start" "$(now_ns)")
  read -r cpu rss < <(cpu_rss "$WORK/$name.time")
  echo "$wall $cpu $rss"
}

# (b) no output
: > "$WORK/none.toml"
read -r none_s none_cpu none_rss < <(run none "$WORK/none.toml" 0)

# (c) every network output
TCP_SINK=$((PORT + 3)); UDP_SINK=$((PORT + 4)); RELAY=$((PORT + 5)); KAFKA=$((PORT + 6))
socat -u TCP-LISTEN:$TCP_SINK,reuseaddr,fork OPEN:/dev/null & PIDS+=("$!")
socat -u UDP-RECV:$UDP_SINK OPEN:/dev/null & PIDS+=("$!")
fstrm_capture -t $CT -a 127.0.0.1 -p "$RELAY" -w /dev/null 2>/dev/null & PIDS+=("$!")
outputs=5
cat > "$WORK/all.toml" <<EOF
[[outputs]]
kind = "tcp"
address = "127.0.0.1:$TCP_SINK"
queue_size = $QUEUE

[[outputs]]
kind = "syslog"
address = "127.0.0.1:$UDP_SINK"
queue_size = $QUEUE

[[outputs]]
kind = "dnstap"
address = "127.0.0.1:$RELAY"
queue_size = $QUEUE

[[outputs]]
kind = "nats"
url = "nats://127.0.0.1:4222"
subject = "bench.outputs.$$"
queue_size = $QUEUE

[[outputs]]
kind = "postgres"
dsn = "postgres://$(id -un)@127.0.0.1:5432/test"
table = "$TABLE"
queue_size = $QUEUE
EOF
if [ -x "$HOME/.cargo/bin/tansu" ]; then
  "$HOME/.cargo/bin/tansu" broker --listener-url tcp://127.0.0.1:$KAFKA --advertised-listener-url tcp://127.0.0.1:$KAFKA \
    --storage-engine memory://tansu/ >/dev/null 2>&1 & PIDS+=("$!")
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$KAFKA) 2>/dev/null && break; sleep 0.1; done
  cat >> "$WORK/all.toml" <<EOF

[[outputs]]
kind = "kafka"
brokers = ["127.0.0.1:$KAFKA"]
topic = "$TOPIC"
queue_size = $QUEUE
EOF
  outputs=6
fi
sleep 0.5
read -r all_s all_cpu all_rss < <(run all "$WORK/all.toml" "$outputs")

{
  echo "file: $FILE (realistic, $MSGS messages, $(du -m "$FILE" | cut -f1) MiB); queue_size $QUEUE per output"
  echo "$(cat "$WORK/load.txt"); after: $(cat /proc/loadavg)"
  echo
  echo "| receiver | wall s | msg/s | CPU s | peak RSS MiB |"
  echo "|---|---|---|---|---|"
  echo "| fstrm_capture -w /dev/null | $capture_s | $(rate "$capture_s") | – | – |"
  echo "| dnsrecall serve, stored, no output | $none_s | $(rate "$none_s") | $none_cpu | $none_rss |"
  echo "| dnsrecall serve, stored, $outputs network outputs | $all_s | $(rate "$all_s") | $all_cpu | $all_rss |"
  echo
  echo "ratio all outputs / no output: $(awk -v a="$none_s" -v b="$all_s" 'BEGIN { printf "%.2f", a / b }')"
  echo
  echo "per output (written, dropped by reason):"
  echo '```'
  cat "$WORK/all.outputs.txt"
  echo '```'
} | tee "$WORK/result.md"
