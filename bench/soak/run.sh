#!/usr/bin/env bash
# Soak: `dnsrecall serve` (release) receives dnstap over loopback TCP at a
# fixed rate of messages whose names are all different (the store's and the
# caches' worst case) for a fixed time, under one memory budget. Every 10 s
# the script samples serve's RSS and its counters (frames received, records
# written, drops); at the end it prints the RSS after warm-up (min, max, and
# whether it stayed within 10 % and within the budget) and plots RSS and
# throughput over time to a PNG (matplotlib, in a bench venv).
#
# usage: bench/soak/run.sh [SECONDS [RATE [BUDGET_MIB]]]   (defaults 3600 100000 1024)
#
# Environment:
#   CARGO_TARGET_DIR  release build dir (default ~/.cache/dnsrecall-target)
#   SOAK_DIR          work dir (default ~/.cache/dnsrecall-soak)
#   SOAK_OUT          where the CSV, PNG and summary go (default bench/runs/soak-<date>)
#   SOAK_PORT         first loopback port (default 18700; uses 2)
# This is not a CI test: it runs for as long as it is told.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TOTAL="${1:-3600}"
RATE="${2:-100000}"
BUDGET="${3:-1024}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dnsrecall-target}"
WORK="${SOAK_DIR:-$HOME/.cache/dnsrecall-soak}"
OUT="${SOAK_OUT:-bench/runs/soak-$(date -u +%Y-%m-%d)}"
PORT="${SOAK_PORT:-18700}"
API=$((PORT + 1))
log() { printf '== %s\n' "$*" >&2; }

log "building the release binary and the load generator"
cargo build --release --locked -p dnsrecall >&2
cargo build --release --locked -p dnsrecall-dnstap --example dnstap_load >&2
BIN="$CARGO_TARGET_DIR/release/dnsrecall"
LOAD="$CARGO_TARGET_DIR/release/examples/dnstap_load"

rm -rf "$WORK"
mkdir -p "$WORK" "$OUT"
cat > "$WORK/soak.toml" <<EOF
data_dir = "$WORK/data"
[api]
listen = "127.0.0.1:$API"
[dnstap]
tcp = "127.0.0.1:$PORT"
[memory]
budget_mib = $BUDGET
EOF

"$BIN" --config "$WORK/soak.toml" serve 2> "$WORK/serve.log" &
SERVE=$!
cleanup() { kill "$SERVE" 2>/dev/null || true; kill "${LOADER:-}" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$API/metrics" >/dev/null 2>&1 && break
  sleep 0.1
done
grep -o 'memory budget.*' "$WORK/serve.log" | head -1 >&2 || true

"$LOAD" "127.0.0.1:$PORT" "$RATE" "$SECONDS_TOTAL" > "$WORK/load.out" &
LOADER=$!

metric() { awk -v name="$1" '$1 == name { sum += $2 } END { printf "%d", sum }' "$WORK/metrics.txt"; }
CSV="$OUT/soak.csv"
echo "seconds,rss_mib,frames,written,dropped" > "$CSV"
start=$(date +%s)
while kill -0 "$LOADER" 2>/dev/null; do
  sleep 10
  t=$(( $(date +%s) - start ))
  rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVE/status")
  curl -sf "http://127.0.0.1:$API/metrics" > "$WORK/metrics.txt" || : > "$WORK/metrics.txt"
  frames=$(metric dnsrecall_dnstap_frames_received_total)
  written=$(metric dnsrecall_pipeline_dedup_out_total)
  dropped=$(grep -E '^dnsrecall_[a-z_]*(dropped|rejected)[a-z_]*(\{[^}]*\})? ' "$WORK/metrics.txt" | awk '{ s += $2 } END { printf "%d", s }')
  echo "$t,$rss,$frames,$written,$dropped" >> "$CSV"
done
wait "$LOADER" || { log "the load generator failed"; cat "$WORK/load.out" >&2; exit 1; }
cat "$WORK/load.out" >&2
kill -TERM "$SERVE"; wait "$SERVE" || true
trap - EXIT

VENV="${SOAK_VENV:-$HOME/.cache/dnsrecall-bench-venv}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check matplotlib
fi
"$VENV/bin/python" bench/soak/report.py "$CSV" "$OUT/soak.png" "$BUDGET" "$RATE" | tee "$OUT/summary.txt"
