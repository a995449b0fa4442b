#!/usr/bin/env bash
# Packet capture benchmark: `dnsrecall import` of a large pcap against
# `tshark -r FILE -T fields -e dns.qry.name` on the same file, plus the
# capture crate's criterion parse bench.
#
#   bench/capture/run.sh                  # build, make the capture (cached), measure
#
# Environment:
#   CARGO_TARGET_DIR   release build dir (default /root/.cache/dnsrecall-target-release)
#   CAPTURE_RUN_DIR    work/output folder (default bench/runs/capture-<date>-<host>)
#   CAPTURE_DOUBLINGS  the seed capture is doubled this many times (default 11:
#                      1238 packets x 2^11 = 2,535,424 packets)
#   SKIP_CRITERION=1   do not run the criterion bench
#   CAPTURE_ONLY=1     only make the capture
#   DNSRECALL_BIN      use this binary instead of building one (smoke runs)
#
# The capture: unbound_lo.pcap (1205 packets, UDP+TCP, v4+v6, ports
# 5300/5301) + dnsdump_udp.pcap (33 packets, port 53), concatenated, then
# doubled N times: each doubling appends a copy time-shifted (editcap -t) by
# the current span + 1 s (mergecap -a), so time only moves forward.
# Both tools decode ports 53, 5300, 5301 as DNS (dnsrecall: [capture] ports;
# tshark: -d decode-as). Page cache warm (the file is read once before).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/dnsrecall-target-release}"
RUN_DIR="${CAPTURE_RUN_DIR:-bench/runs/capture-$(date +%F)-$(hostname -s)}"
DOUBLINGS="${CAPTURE_DOUBLINGS:-11}"
DATA="$PWD/tests/data/pcap"
BIN="${DNSRECALL_BIN:-$CARGO_TARGET_DIR/release/dnsrecall}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
log() { printf '== %s\n' "$*" >&2; }
for tool in editcap mergecap capinfos tshark /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wireshark-common tshark time)" >&2; exit 2; }
done

if [ -z "${DNSRECALL_BIN:-}" ]; then
  log "building dnsrecall (release)"
  cargo build --release --locked -p dnsrecall >&2
fi

mkdir -p "$RUN_DIR/data"   # ignored by git (bench/runs/*/data)
BIG="$RUN_DIR/data/big.pcap"
if [ ! -s "$BIG" ] || [ "$(cat "$RUN_DIR/data/big.doublings" 2>/dev/null)" != "$DOUBLINGS" ]; then
  log "making the capture ($DOUBLINGS doublings)"
  tmp="$RUN_DIR/data/tmp"; rm -rf "$tmp"; mkdir -p "$tmp"
  # dnsdump_udp.pcap (2020) is moved right after unbound_lo.pcap in time.
  first_u=$(capinfos -Tr -a "$DATA/unbound/unbound_lo.pcap" | awk -F'\t' '{print int($2)}')
  last_u=$(capinfos -Tr -e "$DATA/unbound/unbound_lo.pcap" | awk -F'\t' '{print int($2)+1}')
  first_d=$(capinfos -Tr -a "$DATA/go-dnscollector/dnsdump_udp.pcap" | awk -F'\t' '{print int($2)}')
  editcap -F pcap -t $((last_u + 1 - first_d)) "$DATA/go-dnscollector/dnsdump_udp.pcap" "$tmp/udp.pcap"
  mergecap -F pcap -a -w "$tmp/seed.pcap" "$DATA/unbound/unbound_lo.pcap" "$tmp/udp.pcap"
  span=$((last_u + 2 - first_u + 60))
  cp "$tmp/seed.pcap" "$tmp/cur.pcap"
  for _ in $(seq 1 "$DOUBLINGS"); do
    editcap -F pcap -t "$span" "$tmp/cur.pcap" "$tmp/shifted.pcap"
    mergecap -F pcap -a -w "$tmp/next.pcap" "$tmp/cur.pcap" "$tmp/shifted.pcap"
    mv "$tmp/next.pcap" "$tmp/cur.pcap"
    span=$((span * 2))
  done
  mv "$tmp/cur.pcap" "$BIG"; rm -rf "$tmp"
  echo "$DOUBLINGS" > "$RUN_DIR/data/big.doublings"
fi
packets=$(capinfos -Tr -c "$BIG" | awk -F'\t' '{print $2}')
bytes=$(stat -c %s "$BIG")
log "capture: $packets packets, $bytes bytes"
[ "${CAPTURE_ONLY:-0}" = 1 ] && exit 0
cat "$BIG" > /dev/null

# "user sys wall peak_rss_kib" from a /usr/bin/time -v output.
time_fields() {
  awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2}
    /Elapsed \(wall clock\)/ { n=split($2, p, ":"); w=0; for (i=1;i<=n;i++) w=w*60+p[i] }
    END { printf "%s %s %s %s\n", u, s, w, r }' "$1"
}

log "dnsrecall import"
rm -rf "$RUN_DIR/data/store"
printf '[capture]\nports = [53, 5300, 5301]\n' > "$RUN_DIR/dnsrecall.toml"
/usr/bin/time -v -o "$RUN_DIR/dnsrecall.time" "$BIN" --config "$RUN_DIR/dnsrecall.toml" --data-dir "$RUN_DIR/data/store" \
  import --json-summary "$BIG" > "$RUN_DIR/dnsrecall.summary.json" 2> "$RUN_DIR/dnsrecall.stderr"
read -r d_user d_sys d_wall d_rss < <(time_fields "$RUN_DIR/dnsrecall.time")

log "tshark"
/usr/bin/time -v -o "$RUN_DIR/tshark.time" tshark -n -r "$BIG" -T fields -e dns.qry.name \
  -d udp.port==5300,dns -d tcp.port==5300,dns -d udp.port==5301,dns -d tcp.port==5301,dns > /dev/null 2> "$RUN_DIR/tshark.stderr"
read -r t_user t_sys t_wall t_rss < <(time_fields "$RUN_DIR/tshark.time")

crit="not run"
if [ "${SKIP_CRITERION:-0}" != 1 ]; then
  log "criterion parse bench (dnsrecall-capture)"
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR-criterion" cargo bench --locked -p dnsrecall-capture --bench parse > "$RUN_DIR/criterion.txt" 2>&1 || true
  crit=$(grep -A3 'unbound_lo_replicated' "$RUN_DIR/criterion.txt" | grep -o 'thrpt: *\[[^]]*\]' | head -1 || echo "see criterion.txt")
fi

python3 - "$RUN_DIR" "$packets" "$bytes" "$d_user" "$d_sys" "$d_wall" "$d_rss" "$t_user" "$t_sys" "$t_wall" "$t_rss" "$crit" <<'PY' | tee "$RUN_DIR/summary-capture.md"
import json, sys
run, packets, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
du, ds, dw, dr, tu, ts, tw, tr = map(float, sys.argv[4:12])
crit = sys.argv[12]
s = json.load(open(f"{run}/dnsrecall.summary.json"))
def row(name, u, sy, w, r):
    cpu = u + sy
    return f"| {name} | {w:.2f} | {packets / w:,.0f} | {u:.2f} + {sy:.2f} | {packets / cpu:,.0f} | {r / 1024:,.0f} |"
print(f"capture: {packets:,} packets, {size / 1e6:,.0f} MB; dnsrecall: {s['responses']:,} responses, "
      f"{s['records']:,} records ({s['distinct_writes']:,} distinct writes), rejected {s['rejected_total']}\n")
print("| tool | wall s | packets/s (wall) | CPU user + sys s | packets per CPU-second | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|")
print(row("`dnsrecall import`", du, ds, dw, dr))
print(row("`tshark -T fields -e dns.qry.name`", tu, ts, tw, tr))
print(f"\nratio dnsrecall/tshark: {tw / dw:.1f}x wall clock, {(tu + ts) / (du + ds):.1f}x CPU")
print(f"\ncriterion `parse/unbound_lo_replicated` (decode path only, one core): {crit}")
PY
