# Shared by bench/import.sh and bench/query.sh (sourced, not run).
#
# Environment:
#   CARGO_TARGET_DIR  release build directory (default /root/.cache/dnsrecall-target-release)
#   BENCH_RUN_DIR     run folder (default bench/runs/<YYYY-MM-DD>-<hostname>)
#   BENCH_LINES       COF lines to generate (default 5200000)
#   BENCH_NAMES       distinct rrnames to aim for (default 1000000)
#   BENCH_SEED        generator seed (default 20241122)
#   BENCH_PORT        loopback port for `dnsrecall serve` (default 18473)
#   BENCH_DURATION    wrk duration per run (query.sh; default 10s)
#   BENCH_CONNECTIONS wrk connection counts (query.sh; default "1 16 64")

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/dnsrecall-target-release}"
BENCH_LINES="${BENCH_LINES:-5200000}"
BENCH_NAMES="${BENCH_NAMES:-1000000}"
BENCH_SEED="${BENCH_SEED:-20241122}"
BENCH_PORT="${BENCH_PORT:-18473}"
RUN_DIR="${BENCH_RUN_DIR:-bench/runs/$(date +%F)-$(hostname -s)}"
DATA_DIR="$RUN_DIR/data"
COF_FILE="$DATA_DIR/cof.ndjson"
STORE_DIR="$DATA_DIR/store"
# The binary under test is copied next to the data, so a rebuild in the
# shared target directory during a run cannot change it half-way.
BUILT_BIN="$CARGO_TARGET_DIR/release/dnsrecall"
BIN="$DATA_DIR/dnsrecall"
mkdir -p "$RUN_DIR"

log() { printf '== %s\n' "$*" >&2; }

# Nanoseconds since the epoch.
now_ns() { date +%s%N; }

# seconds between two now_ns values, 3 decimals.
seconds_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# Writes the machine description once per run folder.
describe_machine() {
  [ -s "$RUN_DIR/machine.txt" ] && return 0
  {
    echo "date: $(date -Is)"
    echo "hostname: $(hostname)"
    echo "nproc: $(nproc)"
    echo "uname: $(uname -srm)"
    echo "rustc: $(rustc -V)"
    echo "python: $(python3 -V 2>&1)"
    echo "wrk: $(wrk --version 2>&1 | head -1 || true)"
    echo "memory: $(free -m | awk '/^Mem:/ { print $2 " MiB total, " $7 " MiB available" }')"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo 'no commit yet'), $(git status --porcelain 2>/dev/null | wc -l) paths modified or untracked"
    echo "loadavg at start: $(cat /proc/loadavg)"
    echo
    echo '$ lscpu | head -20'
    lscpu | head -20
  } >"$RUN_DIR/machine.txt"
}

# Builds the release binary (retrying is the caller's business).
build_release() {
  log "cargo build --release --locked -p dnsrecall (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  cargo build --release --locked -p dnsrecall 2>&1 | tail -n 3
  [ -x "$BUILT_BIN" ] || return 1
  mkdir -p "$DATA_DIR"
  install -m 755 "$BUILT_BIN" "$BIN"
  {
    echo "binary: $("$BIN" --version)"
    echo "sha256: $(sha256sum "$BIN" | cut -d' ' -f1)"
    echo "built: $(stat -c %y "$BUILT_BIN")"
  } >"$RUN_DIR/binary.txt"
}

# Generates the COF file once per run folder (same arguments and generator
# → same bytes, so a cached file is reused).
generate_data() {
  local want
  want="$(sha256sum bench/gen_cof.py | cut -c1-16) lines=$BENCH_LINES names=$BENCH_NAMES seed=$BENCH_SEED"
  if [ -s "$DATA_DIR/meta.json" ] && [ -s "$COF_FILE" ] && [ "$(cat "$DATA_DIR/gen.key" 2>/dev/null)" = "$want" ]; then
    log "reusing generated data in $DATA_DIR ($want)"
    return 0
  fi
  log "generating $BENCH_LINES COF lines into $DATA_DIR"
  mkdir -p "$DATA_DIR"
  rm -f "$DATA_DIR/gen.key"
  local start end
  start=$(now_ns)
  python3 bench/gen_cof.py --lines "$BENCH_LINES" --names "$BENCH_NAMES" --seed "$BENCH_SEED" "$DATA_DIR" >/dev/null
  end=$(now_ns)
  echo "$want" >"$DATA_DIR/gen.key"
  cp "$DATA_DIR/meta.json" "$RUN_DIR/data-meta.json"
  echo "python3 bench/gen_cof.py --lines $BENCH_LINES --names $BENCH_NAMES --seed $BENCH_SEED $DATA_DIR: $(seconds_between "$start" "$end") s" \
    >"$RUN_DIR/generate.txt"
}

# json_field FILE KEY: a top-level scalar of a JSON file.
json_field() { jq -r ".$2" "$1"; }

# Starts `dnsrecall serve` on the store; sets SERVER_PID. Waits for /info.
start_server() {
  if ss -ltn "sport = :$BENCH_PORT" | grep -q LISTEN; then
    echo "port $BENCH_PORT is in use; set BENCH_PORT" >&2
    return 1
  fi
  "$BIN" --data-dir "$STORE_DIR" serve --listen "127.0.0.1:$BENCH_PORT" >"$1" 2>&1 &
  SERVER_PID=$!
  local tries=0
  until curl -sf "http://127.0.0.1:$BENCH_PORT/info" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 600 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "dnsrecall serve did not come up; see $1" >&2
      return 1
    fi
    sleep 0.1
  done
}

# Stops the server started by start_server (SIGTERM, then waits up to 60 s).
stop_server() {
  [ -n "${SERVER_PID:-}" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local tries=0
  while kill -0 "$SERVER_PID" 2>/dev/null && [ "$tries" -lt 600 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "dnsrecall serve (pid $SERVER_PID) ignored SIGTERM for 60 s; killing it" >&2
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# CPU seconds (user+system) a process has used so far.
process_cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# summary.md = the parts the scripts have written so far.
assemble_summary() {
  {
    echo "# Foundation benchmark run $(basename "$RUN_DIR")"
    echo
    echo "Machine: see [machine.txt](machine.txt). Data: see [data-meta.json](data-meta.json)."
    for part in summary-import.md summary-query.md; do
      if [ -s "$RUN_DIR/$part" ]; then
        echo
        cat "$RUN_DIR/$part"
      fi
    done
  } >"$RUN_DIR/summary.md"
}

# Samples the load and the busiest processes every 10 s into
# $RUN_DIR/load-<name>.txt while the calling script runs (at most 30 min):
# the machine is shared, and a figure taken while something else was
# compiling should be visibly so.
start_load_monitor() {
  local out="$RUN_DIR/load-$1.txt" parent=$$
  : >"$out"
  (
    for _ in $(seq 1 180); do
      kill -0 "$parent" 2>/dev/null || exit 0
      {
        echo "--- $(date +%T) loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
        top -b -n 1 -w 160 | sed -n '8,12p'
      } >>"$out"
      sleep 10
    done
  ) &
  LOAD_MONITOR_PID=$!
}

stop_load_monitor() {
  [ -n "${LOAD_MONITOR_PID:-}" ] || return 0
  kill "$LOAD_MONITOR_PID" 2>/dev/null || true
  wait "$LOAD_MONITOR_PID" 2>/dev/null || true
  LOAD_MONITOR_PID=
}
