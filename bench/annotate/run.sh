#!/usr/bin/env bash
# Flow annotation benchmark (issue: DNSDB-compatible query API, item 7).
# Imports RECORDS A records over IPS addresses, generates FLOWS CSV flows
# over them, and times `dnsrecall annotate` against `cat` of the same file:
# flows/s, ratio to cat, peak RSS, cache behaviour.
# Usage: bench/annotate/run.sh   (results in bench/runs/<date>-<host>/annotate/)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/dnsrecall-target-release}"
cargo build --release --locked -p dnsrecall >/dev/null
bin="$CARGO_TARGET_DIR/release/dnsrecall"
records=${RECORDS:-1000000}
ips=${IPS:-200000}
flows=${FLOWS:-1000000}
out="bench/runs/$(date +%F)-$(hostname)/annotate"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
python3 bench/annotate/gen.py store "$records" "$ips" "$work/store.ndjson"
python3 bench/annotate/gen.py flows "$flows" "$ips" "$work/flows.csv"
"$bin" --data-dir "$work/data" import --format cof "$work/store.ndjson" 2> "$out/import.log"
"$bin" --data-dir "$work/data" compact >> "$out/import.log"

start=$(date +%s.%N); cat "$work/flows.csv" > "$work/cat.out"; end=$(date +%s.%N)
cat_secs=$(python3 -c "print($end-$start)")
start=$(date +%s.%N)
/usr/bin/time -v "$bin" --data-dir "$work/data" annotate "$work/flows.csv" > "$work/annotated.csv" 2> "$out/annotate.log"
end=$(date +%s.%N)
secs=$(python3 -c "print($end-$start)")
head -3 "$work/annotated.csv" > "$out/sample.csv"
python3 - "$out/annotate.log" "$flows" "$secs" "$cat_secs" "$records" "$ips" > "$out/summary.md" <<'PY'
import re, sys
log = open(sys.argv[1]).read()
flows, secs, cat_secs = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", log).group(1))
summary = re.search(r"annotate: .*", log).group(0)
print(f"# Flow annotation, {sys.argv[5]} A records over {sys.argv[6]} addresses, {flows} CSV flows")
print()
print("| flows/s (wall, incl. store open) | seconds | cat seconds | annotate/cat time | peak RSS |")
print("|---|---|---|---|---|")
print(f"| {flows/secs:,.0f} | {secs:.2f} | {cat_secs:.3f} | {secs/cat_secs:.0f}x | {rss/1024:.0f} MiB |")
print()
print(f"`{summary}`")
PY
cat "$out/summary.md"
