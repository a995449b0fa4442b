#!/usr/bin/env bash
# Web UI benchmark, on the real RocksDB store: times to the first byte, the
# first row and the last byte of
#  (1) a view of 10,000 rows (`/?q=*.big.example&limit=10000`: 10,500 names
#      match, so the view is cut and says so; its rows stream), and
#  (2) a name's view with its timeline (`/?q=www.timeline.example`, 60 records),
# each against the equivalent DNSDB API request (the reference: same server,
# same store, same run), from a store of RECORDS records (default 1,000,000).
# Prints the medians of RUNS requests (default 15) and the ratios UI / API.
#
#   bench/ui/run.sh                                                  # debug binary
#   DNSRECALL_BIN=$CARGO_TARGET_DIR/release/dnsrecall RECORDS=10000000 bench/ui/run.sh
#
# KEEP=DIR keeps the generated store in DIR (and reuses it when it is there).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${DNSRECALL_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/dnsrecall}"
records="${RECORDS:-1000000}"
runs="${RUNS:-15}"
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }
work="$(mktemp -d)"
data="${KEEP:-$work}/data"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ ! -d "$data" ]; then
  echo "== generating $records records" >&2
  python3 - "$records" > "$work/records.ndjson" <<'PY'
import sys
n = int(sys.argv[1])
t = 1_700_000_000
w = sys.stdout.write
# 10,500 names below big.example: the 10,000-row view is cut (and says so).
for i in range(10_500):
    w(f'{{"rrname":"h{i}.big.example","rrtype":"A","rdata":"10.{i >> 8 & 255}.{i & 255}.1",'
      f'"time_first":{t + i},"time_last":{t + i * 7},"count":{1 + i % 50}}}\n')
# A name with 60 records over two years: the timeline view.
for i in range(60):
    w(f'{{"rrname":"www.timeline.example","rrtype":"A","rdata":"192.0.2.{i + 1}",'
      f'"time_first":{t + i * 86400 * 12},"time_last":{t + i * 86400 * 12 + 86400 * 30},"count":{i + 1}}}\n')
# Filler: other names, spread over many zones.
for i in range(max(0, n - 10_560)):
    w(f'{{"rrname":"n{i}.z{i % 5000}.filler.example","rrtype":"A",'
      f'"rdata":"198.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}","time_first":{t},"time_last":{t + i % 100000},"count":1}}\n')
PY
  echo "== importing" >&2
  start=$(date +%s)
  "$bin" --data-dir "$data" import --format cof "$work/records.ndjson" 2>"$work/import.log" \
    || { tail -20 "$work/import.log" >&2; exit 1; }
  echo "== imported in $(( $(date +%s) - start )) s; $(du -sh "$data" | cut -f1) on disk" >&2
  rm -f "$work/records.ndjson"
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$bin" --data-dir "$data" serve --listen "127.0.0.1:$port" 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 600); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/openapi.json" && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done

echo "store: $records records ($(du -sh "$data" | cut -f1)); $runs runs each, medians; load: $(cut -d' ' -f1-3 /proc/loadavg)"
# For each (label, UI path, API path): the UI page and the API answer, each
# fetched RUNS times after one warm-up; milliseconds from sending the request
# to the response head (first byte), to the first row (`<tr id="r0"`, SAF
# `{"obj"`) and to the last byte.
python3 - "$port" "$runs" <<'PY'
import http.client, statistics, sys, time

port, runs = int(sys.argv[1]), int(sys.argv[2])
VIEWS = [
    ("10,000-row view", "/?q=*.big.example&limit=10000", "/dnsdb/v2/lookup/rrset/name/*.big.example?limit=10000"),
    ("name view with timeline", "/?q=www.timeline.example", "/dnsdb/v2/lookup/rrset/name/www.timeline.example"),
]

def fetch(path, marker):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    head = time.perf_counter()
    first_row, size, tail = None, 0, b""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        size += len(chunk)
        if first_row is None:
            tail = tail[-len(marker):] + chunk
            if marker in tail:
                first_row = time.perf_counter()
    end = time.perf_counter()
    conn.close()
    assert response.status == 200, (path, response.status)
    ms = lambda t: (t - start) * 1000
    return ms(head), ms(first_row if first_row else end), ms(end), size

def measure(path, marker):
    fetch(path, marker)  # warm-up
    samples = [fetch(path, marker) for _ in range(runs)]
    med = lambda i: statistics.median(s[i] for s in samples)
    return med(0), med(1), med(2), samples[0][3]

for label, ui, api in VIEWS:
    u = measure(ui, b'<tr id="r0"')
    a = measure(api, b'{"obj"')
    print(f"{label}: UI first byte {u[0]:.1f} ms, first row {u[1]:.1f} ms, last byte {u[2]:.1f} ms ({u[3]} B); "
          f"API first byte {a[0]:.1f} ms, first row {a[1]:.1f} ms, last byte {a[2]:.1f} ms ({a[3]} B); "
          f"ratio UI/API first row {u[1] / a[1]:.2f}, last byte {u[2] / a[2]:.2f}")
PY
