#!/usr/bin/env bash
# Web UI benchmark: time to first byte and to the last byte of
#  (1) a view of 10,000 rows (`/?q=*.big.example&limit=10000`) and
#  (2) a name's view with its timeline (`/?q=www.timeline.example`),
# against the equivalent DNSDB API request (the reference, same server,
# same store, same run), from a store of RECORDS records (default 1,000,000).
# Prints medians of RUNS requests (default 15) and the ratio UI / API.
#
#   bench/ui/run.sh                      # debug binary from cargo test
#   DNSRECALL_BIN=target/release/dnsrecall RECORDS=10000000 bench/ui/run.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${DNSRECALL_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/dnsrecall}"
records="${RECORDS:-1000000}"
runs="${RUNS:-15}"
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }
work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== generating $records records" >&2
python3 - "$records" > "$work/records.ndjson" <<'PY'
import json, sys
n = int(sys.argv[1])
t = 1_700_000_000
out = sys.stdout
w = out.write
# 10,500 names below big.example: the 10,000-row view is cut (and says so).
for i in range(10_500):
    w(json.dumps({"rrname": f"h{i}.big.example", "rrtype": "A", "rdata": f"10.{i >> 8 & 255}.{i & 255}.1",
                  "time_first": t + i, "time_last": t + i * 7, "count": 1 + i % 50}) + "\n")
# A name with 60 records over two years: the timeline view.
for i in range(60):
    w(json.dumps({"rrname": "www.timeline.example", "rrtype": "A", "rdata": f"192.0.2.{i + 1}",
                  "time_first": t + i * 86400 * 12, "time_last": t + i * 86400 * 12 + 86400 * 30, "count": i + 1}) + "\n")
# Filler: other names, spread over many zones.
for i in range(max(0, n - 10_560)):
    w(json.dumps({"rrname": f"n{i}.z{i % 5000}.filler.example", "rrtype": "A", "rdata": f"198.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                  "time_first": t, "time_last": t + i % 100000, "count": 1}) + "\n")
PY
echo "== importing" >&2
"$bin" --data-dir "$work/data" import --format cof "$work/records.ndjson" 2>"$work/import.log"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$bin" --data-dir "$work/data" serve --listen "127.0.0.1:$port" 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 200); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/openapi.json" && break
  sleep 0.1
done
base="http://127.0.0.1:$port"

# median of `curl -w` field over RUNS requests, in ms
measure() {
  local url="$1"
  curl -s -o /dev/null "$url"   # warm
  for _ in $(seq 1 "$runs"); do
    curl -s -o /dev/null -w '%{time_starttransfer} %{time_total} %{size_download}\n' "$url"
  done | python3 -c '
import sys, statistics
rows = [tuple(map(float, l.split())) for l in sys.stdin]
print(f"{statistics.median(r[0] for r in rows)*1000:.1f} {statistics.median(r[1] for r in rows)*1000:.1f} {int(rows[0][2])}")'
}

report() {
  local label="$1" ui="$2" api="$3"
  read -r ui_first ui_total ui_bytes <<<"$(measure "$base$ui")"
  read -r api_first api_total api_bytes <<<"$(measure "$base$api")"
  python3 - "$label" "$ui_first" "$ui_total" "$ui_bytes" "$api_first" "$api_total" "$api_bytes" <<'PY'
import sys
label, uf, ut, ub, af, at, ab = sys.argv[1], *map(float, sys.argv[2:])
print(f"{label}: UI first byte {uf:.1f} ms, last byte {ut:.1f} ms ({int(ub)} B); "
      f"API first byte {af:.1f} ms, last byte {at:.1f} ms ({int(ab)} B); "
      f"ratio UI/API (last byte) {ut / at:.2f}")
PY
}

echo "store: $records records; $runs runs each, medians"
report "10,000-row view" "/?q=*.big.example&limit=10000" "/dnsdb/v2/lookup/rrset/name/*.big.example?limit=10000"
report "name view with timeline" "/?q=www.timeline.example" "/dnsdb/v2/lookup/rrset/name/www.timeline.example"
