#!/usr/bin/env bash
# The architecture refactor (issue #9) must not cost speed: the binary of
# the last commit before it and the binary of this tree, run on the same
# inputs in one script, interleaved (old, new, new, old, ...), on
#   1. `dnsrecall import` of a passivedns `||` log into an empty data dir
#      (wall clock, process start to exit), and
#   2. dnstap ingest through `dnsrecall serve --dnstap-tcp`: fstrm_replay of
#      a Frame Streams file over loopback TCP, SIGTERM when it ends, clock
#      stopped when serve has exited (queues drained, dedup flushed, store
#      flushed).
# Both runs must store the same number of entries (checked). The figure is
# the ratio of medians, new rate ÷ old rate (≥ 0.95 wanted); CPU seconds
# (user + sys) are reported beside it, being less sensitive to the noisy
# shared machine than wall time.
#
# Inputs are generated here: bench/refactor/gen_passivedns.py and
# bench/dnstap/gen.py (nothing is read from outside the repository).
#
# Environment:
#   BENCH_OLD_COMMIT   the previous commit (default b1b871f: the last commit
#                      before the refactor's first, 01f8595)
#   BENCH_OLD_TREE     where its source is checked out with `git worktree add`
#                      (default $WORK/old-tree)
#   BENCH_OLD_TARGET   its CARGO_TARGET_DIR (default $WORK/old-target; seed it
#                      with a copy of a warm target dir to reuse RocksDB's build)
#   CARGO_TARGET_DIR   the new binary's target dir (default $HOME/.cache/dnsrecall-target)
#   BENCH_BUILD        release (default) or dev: the dev profile with the
#                      workspace crates at opt-level $BENCH_DEV_OPT (default 2,
#                      the level the dev profile gives the dependencies), built
#                      through `cargo test --workspace --no-run --test
#                      import_query` so the features match a warm `cargo test
#                      --workspace` build and RocksDB is not built again; for a
#                      machine where a release build of RocksDB does not fit
#   BENCH_OLD_BIN, BENCH_NEW_BIN  use these binaries instead of building
#   BENCH_REFACTOR_DIR work dir for inputs and stores (default $HOME/.cache/dnsrecall-bench-refactor)
#   BENCH_PDNS_LINES   passivedns lines (default 2000000)
#   BENCH_DNSTAP_MSGS  dnstap messages (default 1000000, realistic mode)
#   BENCH_ROUNDS       runs of each binary per workload (default 3)
#   BENCH_PORT         first loopback port (default 18700; uses 2)
#   BENCH_RUN_DIR      where results go (default bench/runs/<date>-refactor)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
WORK="${BENCH_REFACTOR_DIR:-$HOME/.cache/dnsrecall-bench-refactor}"
OLD_COMMIT="${BENCH_OLD_COMMIT:-b1b871f}"
OLD_TREE="${BENCH_OLD_TREE:-$WORK/old-tree}"
OLD_TARGET="${BENCH_OLD_TARGET:-$WORK/old-target}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dnsrecall-target}"
PDNS_LINES="${BENCH_PDNS_LINES:-2000000}"
MSGS="${BENCH_DNSTAP_MSGS:-1000000}"
ROUNDS="${BENCH_ROUNDS:-3}"
PORT="${BENCH_PORT:-18700}"
RUN_DIR="${BENCH_RUN_DIR:-bench/runs/$(date +%F)-refactor}"
CT=protobuf:dnstap.Dnstap
mkdir -p "$WORK" "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
log() { printf '== %s\n' "$*" >&2; }
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
# "cpu_seconds peak_rss_mib" from a GNU time -v log
cpu_rss() { awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} /Maximum resident/ {r=$2} END { printf "%.2f %.0f\n", u + s, r / 1024 }' "$1"; }
for tool in fstrm_replay curl jq python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/test.sh installs fstrm-bin, curl, jq, time)" >&2; exit 1; }
done

# --- binaries ---------------------------------------------------------------
OLD_FULL=$(git rev-parse --verify "$OLD_COMMIT^{commit}")
BUILD="${BENCH_BUILD:-release}"
# build DIR TARGET_DIR: builds the binary of the tree in DIR; prints its path.
build() {
  if [ "$BUILD" = release ]; then
    (cd "$1" && CARGO_TARGET_DIR="$2" nice -n 10 cargo build --release --locked -p dnsrecall 2>&1 | tail -n 2) >&2
    echo "$2/release/dnsrecall"
  else
    (cd "$1" && CARGO_TARGET_DIR="$2" CARGO_PROFILE_DEV_OPT_LEVEL="${BENCH_DEV_OPT:-2}" CARGO_INCREMENTAL=0 \
      nice -n 10 cargo test --workspace --locked --no-run --test import_query 2>&1 | tail -n 2) >&2
    echo "$2/debug/dnsrecall"
  fi
}
if [ -n "${BENCH_OLD_BIN:-}" ]; then
  OLD_BIN="$BENCH_OLD_BIN"
else
  if [ ! -e "$OLD_TREE/Cargo.toml" ]; then
    log "checking out $OLD_COMMIT into $OLD_TREE"
    git worktree add --detach "$OLD_TREE" "$OLD_FULL" >&2
  fi
  [ "$(git -C "$OLD_TREE" rev-parse HEAD)" = "$OLD_FULL" ] || { echo "$OLD_TREE is not at $OLD_COMMIT" >&2; exit 1; }
  log "building the previous binary ($OLD_COMMIT, $BUILD) in $OLD_TARGET"
  OLD_BIN=$(build "$OLD_TREE" "$OLD_TARGET")
fi
if [ -n "${BENCH_NEW_BIN:-}" ]; then
  NEW_BIN="$BENCH_NEW_BIN"
else
  log "building the new binary ($(git rev-parse --short HEAD), $BUILD) in $CARGO_TARGET_DIR"
  NEW_BIN=$(build . "$CARGO_TARGET_DIR")
fi
# Copies, so a rebuild during the run cannot change them half-way.
install -m 755 "$OLD_BIN" "$WORK/old"
install -m 755 "$NEW_BIN" "$WORK/new"
{
  echo "date: $(date -Is); nproc $(nproc); $(uname -srm); $(rustc -V); build: $BUILD (BENCH_DEV_OPT=${BENCH_DEV_OPT:-2})"
  echo "old: $OLD_FULL ($(git log -1 --format=%s "$OLD_FULL" | cut -c1-80)), sha256 $(sha256sum "$WORK/old" | cut -c1-16)"
  echo "new: $(git rev-parse HEAD) ($(git status --porcelain | wc -l) paths modified), sha256 $(sha256sum "$WORK/new" | cut -c1-16)"
  echo "loadavg at start: $(cat /proc/loadavg)"
} >"$RUN_DIR/machine.txt"

# --- inputs -----------------------------------------------------------------
PDNS="$WORK/bench.pdns.log"
key="$(sha256sum bench/refactor/gen_passivedns.py | cut -c1-16) $PDNS_LINES"
if [ ! -s "$PDNS" ] || [ "$(cat "$PDNS.key" 2>/dev/null)" != "$key" ]; then
  log "generating $PDNS_LINES passivedns lines"
  python3 bench/refactor/gen_passivedns.py "$PDNS" "$PDNS_LINES" >/dev/null
  echo "$key" >"$PDNS.key"
fi
TAP="$WORK/bench.dnstap"
key="$(sha256sum bench/dnstap/gen.py | cut -c1-16) $MSGS"
if [ ! -s "$TAP" ] || [ "$(cat "$TAP.key" 2>/dev/null)" != "$key" ]; then
  log "generating $MSGS dnstap messages (realistic)"
  python3 bench/dnstap/gen.py "$TAP" "$MSGS" 20241122 realistic >/dev/null
  echo "$key" >"$TAP.key"
fi

# --- one run of each kind -----------------------------------------------------
# import_run BIN ROUND: prints "seconds cpu rss records"
import_run() {
  local bin="$WORK/$1" tag="$1-$2" start end
  rm -rf "$WORK/store-$tag"
  start=$(now_ns)
  /usr/bin/time -v -o "$RUN_DIR/import-$tag.time" "$bin" --data-dir "$WORK/store-$tag" import \
    --format passivedns --json-summary "$PDNS" >"$RUN_DIR/import-$tag.json" 2>"$WORK/import-$tag.log"
  end=$(now_ns)
  rm -rf "$WORK/store-$tag"
  echo "$(secs "$start" "$end") $(cpu_rss "$RUN_DIR/import-$tag.time") $(jq -r .records "$RUN_DIR/import-$tag.json")"
}

# dnstap_run BIN ROUND: prints "seconds cpu rss entries"
dnstap_run() {
  local bin="$WORK/$1" tag="$1-$2" http=$PORT tap=$((PORT + 1)) start end server stored
  rm -rf "$WORK/store-$tag"
  /usr/bin/time -v -o "$RUN_DIR/dnstap-$tag.time" "$bin" --data-dir "$WORK/store-$tag" serve \
    --listen "127.0.0.1:$http" --dnstap-tcp "127.0.0.1:$tap" 2>"$WORK/dnstap-$tag.log" &
  server=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$http/info" >/dev/null && break; sleep 0.1; done
  start=$(now_ns)
  timeout 600 fstrm_replay -t $CT -r "$TAP" -a 127.0.0.1 -p "$tap"
  # SIGTERM to dnsrecall itself (the child of time), then wait for time.
  kill -TERM "$(pgrep -P "$server" -x dnsrecall || pgrep -P "$server")" 2>/dev/null || true
  wait "$server" || true
  end=$(now_ns)
  stored=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/dnstap-$tag.log" | grep -o 'store writer finished.*' | grep -o 'entries=[0-9]*' | cut -d= -f2)
  cp "$WORK/dnstap-$tag.log" "$RUN_DIR/dnstap-$tag.log"
  rm -rf "$WORK/store-$tag"
  echo "$(secs "$start" "$end") $(cpu_rss "$RUN_DIR/dnstap-$tag.time") ${stored:-0}"
}

RESULTS="$RUN_DIR/runs.tsv"
printf 'workload\tbinary\tround\tseconds\tcpu_s\trss_mib\tstored\n' >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
  # Alternate who goes first, so drift over the run hits both alike.
  if [ $((round % 2)) = 1 ]; then order="old new"; else order="new old"; fi
  for bin in $order; do
    log "round $round: import, $bin"
    printf 'import\t%s\t%s\t%s\n' "$bin" "$round" "$(import_run "$bin" "$round" | tr ' ' '\t')" >>"$RESULTS"
    tail -n 1 "$RESULTS" >&2
  done
  for bin in $order; do
    log "round $round: dnstap, $bin"
    printf 'dnstap\t%s\t%s\t%s\n' "$bin" "$round" "$(dnstap_run "$bin" "$round" | tr ' ' '\t')" >>"$RESULTS"
    tail -n 1 "$RESULTS" >&2
  done
done
echo "loadavg at end: $(cat /proc/loadavg)" >>"$RUN_DIR/machine.txt"

# --- figures ------------------------------------------------------------------
python3 - "$RESULTS" "$PDNS_LINES" "$MSGS" >"$RUN_DIR/result.md" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
units = {"import": int(sys.argv[2]), "dnstap": int(sys.argv[3])}
ok = True
print("| workload | binary | median s | rate (median) | median CPU s | peak RSS MiB | stored | runs (s) |")
print("|---|---|---|---|---|---|---|---|")
ratios = {}
for workload in ("import", "dnstap"):
    med = {}
    stored = set()
    for binary in ("old", "new"):
        mine = [r for r in rows if r["workload"] == workload and r["binary"] == binary]
        secs = [float(r["seconds"]) for r in mine]
        cpu = [float(r["cpu_s"]) for r in mine]
        rss = max(int(float(r["rss_mib"])) for r in mine)
        stored |= {r["stored"] for r in mine}
        med[binary] = (statistics.median(secs), statistics.median(cpu))
        rate = units[workload] / med[binary][0]
        print(f"| {workload} | {binary} | {med[binary][0]:.2f} | {rate:,.0f} {'lines' if workload == 'import' else 'msg'}/s "
              f"| {med[binary][1]:.2f} | {rss} | {', '.join(sorted({r['stored'] for r in mine}))} | {', '.join(f'{s:.2f}' for s in secs)} |")
    if len(stored) != 1 or "0" in stored:
        ok = False
        print(f"\n**{workload}: old and new stored different counts: {sorted(stored)}**\n")
    ratios[workload] = (med["old"][0] / med["new"][0], med["old"][1] / med["new"][1])
print()
for workload, (wall, cpu) in ratios.items():
    verdict = "met" if wall >= 0.95 else "**not met**"
    print(f"* {workload}: new ÷ old rate (median wall) = **{wall:.3f}** ({verdict}, want ≥ 0.95); "
          f"by CPU seconds = {cpu:.3f}")
sys.exit(0 if ok else 1)
PY
cat "$RUN_DIR/result.md"
