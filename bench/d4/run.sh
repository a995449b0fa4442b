#!/usr/bin/env bash
# D4/Redis backend throughput, each figure beside a reference measured in
# the same run on the same private redis-server (no persistence):
#   1. records/s written through RedisStore (5 commands per record, pipelined,
#      first/last seen by server-side script) vs redis-benchmark's pipelined
#      SET rate (commands/s): the ratio says how close to the server's limit
#      we write;
#   2. D4 queue -> parse -> RedisStore -> commit, lines/s, vs D4's own
#      pdns-ingestion.py loop (re-implemented from the reference, redis-py)
#      on the same lines;
#   3. Redis memory per distinct record, ours vs D4's writes;
#   4. the `d4` input of `dnsrecall serve` end to end: RECORDS lines renamed
#      into the analyzer queue at once, the clock stops when the queue and
#      the processing list are empty (every batch stored and committed),
#      into the redis store and into the rocksdb store, with distinct lines
#      and with realistic (repeating) lines.
# usage: bench/d4/run.sh [RECORDS] [REF_LINES]   (defaults 200000, 20000)
# DNSRECALL_BIN: the dnsrecall binary for 4 (default: a release build).
# DNSRECALL_OLD_BIN: a previous binary; part 4 then runs both, interleaved
#   (old, new, new, old per store and mode), and prints new/old.
# D4_BENCH_SERVE_ONLY=1: part 4 only (no store, queue, cluster, reference).
set -euo pipefail
cd "$(dirname "$0")/../.."
records="${1:-200000}"
ref_lines="${2:-20000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dnsrecall-target}"
nice cargo build -q --release -p dnsrecall-redis --example d4_bench
bench="$CARGO_TARGET_DIR/release/examples/d4_bench"
serve_part="${D4_BENCH_SERVE:-1}"   # 0 skips part 4 (no dnsrecall release build)
if [ "$serve_part" = 1 ] && [ -z "${DNSRECALL_BIN:-}" ]; then
  nice cargo build -q --release -p dnsrecall
  DNSRECALL_BIN="$CARGO_TARGET_DIR/release/dnsrecall"
fi

venv="${DNSRECALL_BENCH_VENV:-$HOME/.cache/dnsrecall-bench-venv}"
if ! "$venv/bin/python" -c 'import redis' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check redis
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir="$(mktemp -d)"
d4_port="$(port)"; pdns_port="$(port)"
cluster_pids=()
redis-server --port "$d4_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null &
d4_pid=$!
redis-server --port "$pdns_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null &
pdns_pid=$!
trap 'kill $d4_pid $pdns_pid 2>/dev/null; rm -rf "$dir"' EXIT
for p in "$d4_port" "$pdns_port"; do
  for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
get() { grep "^$1=" | cut -d= -f2; }

serve_only="${D4_BENCH_SERVE_ONLY:-0}"
set_rate=- store_rate=- store_bytes=- store_usec=- queue_rate=- queue_real_rate=- queue_real_usec=-
if [ "$serve_only" != 1 ]; then
set_rate="$(redis-benchmark -p "$pdns_port" -t set -n 1000000 -P 64 -r 1000000 -q --csv | tail -1 | cut -d, -f2 | tr -d '"')"
  redis-cli -p "$pdns_port" flushall >/dev/null

  # Server time per record: INFO commandstats usec of EVALSHA, which holds
  # everything the batch script runs (the commands a script calls are also
  # counted under their own names, so summing every command would count
  # them twice); the per-batch totals outside the script are negligible.
  server_usec() { redis-cli -p "$pdns_port" info commandstats | tr -d '\r' \
    | sed -n 's/^cmdstat_evalsha:.*usec=\([0-9]*\),.*/\1/p' | awk '{s+=$1} END {print s+0}'; }
  redis-cli -p "$pdns_port" config resetstat >/dev/null
  store_out="$("$bench" store "redis://127.0.0.1:$pdns_port/0" "$records")"
  store_rate="$(echo "$store_out" | get records_per_sec)"
  store_bytes="$(echo "$store_out" | get bytes_per_record)"
  store_usec="$(python3 -c "print(f'{$(server_usec)/$records:.1f}')")"
  redis-cli -p "$pdns_port" flushall >/dev/null

  queue_out="$("$bench" queue "redis://127.0.0.1:$d4_port/2" "redis://127.0.0.1:$pdns_port/0" "$records")"
  queue_rate="$(echo "$queue_out" | get lines_per_sec)"
  redis-cli -p "$pdns_port" flushall >/dev/null
  redis-cli -p "$d4_port" flushall >/dev/null
  redis-cli -p "$pdns_port" config resetstat >/dev/null
  queue_real_out="$("$bench" queue "redis://127.0.0.1:$d4_port/2" "redis://127.0.0.1:$pdns_port/0" "$records" realistic)"
  queue_real_rate="$(echo "$queue_real_out" | get lines_per_sec)"
  queue_real_usec="$(python3 -c "print(f'{$(server_usec)/$records:.1f}')")"
  redis-cli -p "$pdns_port" flushall >/dev/null
  redis-cli -p "$d4_port" flushall >/dev/null

fi

# 4. `dnsrecall serve` with [[inputs]] kind = "d4".
uuid="bench-serve-0000-0000-000000000000"
serve_rate() { # STORE_KIND MODE [BINARY] -> lines/s
  local kind="$1" mode="$2" bin="${3:-$DNSRECALL_BIN}" work api conf pid start end
  work="$(mktemp -d)"; api="$(port)"; conf="$work/dnsrecall.toml"
  if [ "$kind" = redis ]; then
    printf '[store]\nkind = "redis"\nurl = "redis://127.0.0.1:%s/0"\n' "$pdns_port" >"$conf"
  else
    printf '[store]\nkind = "rocksdb"\n' >"$conf"
  fi
  printf '[[inputs]]\nkind = "d4"\nserver = "redis://127.0.0.1:%s/2"\nuuid = "%s"\nbatch_lines = 5000\nidle_ms = 20\n' \
    "$d4_port" "$uuid" >>"$conf"
  "$bench" push "redis://127.0.0.1:$d4_port/2" staging "$records" "$mode"
  "$bin" --config "$conf" --data-dir "$work/data" --log warn serve --listen "127.0.0.1:$api" &
  pid=$!
  for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$api") 2>/dev/null && break; sleep 0.05; done
  start="$(date +%s.%N)"
  redis-cli -p "$d4_port" -n 2 rename staging "analyzer:8:$uuid" >/dev/null
  while [ "$(redis-cli -p "$d4_port" -n 2 eval "return redis.call('llen',KEYS[1])+redis.call('llen',KEYS[2])" 2 \
      "analyzer:8:$uuid" "analyzer:8:$uuid:processing:dnsrecall")" != 0 ]; do
    sleep 0.02
  done
  end="$(date +%s.%N)"
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$work"
  redis-cli -p "$pdns_port" flushall >/dev/null
  redis-cli -p "$d4_port" flushall >/dev/null
  python3 -c "print(round($records/($end-$start)))"
}
serve_redis_distinct=- serve_redis_real=- serve_rocks_distinct=- serve_rocks_real=-
ab_lines=()
if [ "$serve_part" = 1 ] && [ -n "${DNSRECALL_OLD_BIN:-}" ]; then
  # Interleaved old, new, new, old: each binary's mean of two runs.
  for kind in redis rocksdb; do
    for mode in distinct realistic; do
      o1="$(serve_rate "$kind" "$mode" "$DNSRECALL_OLD_BIN")"
      n1="$(serve_rate "$kind" "$mode")"
      n2="$(serve_rate "$kind" "$mode")"
      o2="$(serve_rate "$kind" "$mode" "$DNSRECALL_OLD_BIN")"
      ab_lines+=("serve d4 -> $kind, $mode: old $o1 $o2, new $n1 $n2 lines/s -> new/old $(python3 -c "print(f'{($n1+$n2)/($o1+$o2):.3f}')")")
      if [ "$kind" = redis ] && [ "$mode" = distinct ]; then serve_redis_distinct="$(( (n1 + n2) / 2 ))"; fi
      if [ "$kind" = redis ] && [ "$mode" = realistic ]; then serve_redis_real="$(( (n1 + n2) / 2 ))"; fi
      if [ "$kind" = rocksdb ] && [ "$mode" = distinct ]; then serve_rocks_distinct="$(( (n1 + n2) / 2 ))"; fi
      if [ "$kind" = rocksdb ] && [ "$mode" = realistic ]; then serve_rocks_real="$(( (n1 + n2) / 2 ))"; fi
    done
  done
elif [ "$serve_part" = 1 ]; then
  serve_redis_distinct="$(serve_rate redis distinct)"
  serve_redis_real="$(serve_rate redis realistic)"
  serve_rocks_distinct="$(serve_rate rocksdb distinct)"
  serve_rocks_real="$(serve_rate rocksdb realistic)"
fi

cluster_rate=- ref_rate=- ref_bytes=-
if [ "$serve_only" != 1 ]; then
  # A Redis Cluster of three masters (no replicas) on the same machine: the
  # per-key write path (a record's keys live in different slots).
  cluster_ports=()
  for _ in 1 2 3; do
    p="$(port)"; while [ "$p" -gt 55000 ]; do p="$(port)"; done
    cluster_ports+=("$p")
    mkdir -p "$dir/c$p"
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir/c$p" \
      --cluster-enabled yes --cluster-config-file nodes.conf >/dev/null &
    cluster_pids+=($!)
  done
  trap 'kill $d4_pid $pdns_pid ${cluster_pids[*]} 2>/dev/null; rm -rf "$dir"' EXIT
  for p in "${cluster_ports[@]}"; do
    for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${cluster_ports[@]}") --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 100); do
    redis-cli -p "${cluster_ports[0]}" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1
  done
  cluster_urls="$(printf 'redis://127.0.0.1:%s,' "${cluster_ports[@]}")"
  cluster_out="$("$bench" store "${cluster_urls%,}" "$((records / 4))")"
  cluster_rate="$(echo "$cluster_out" | get records_per_sec)"

  ref_out="$("$venv/bin/python" bench/d4/d4_ingestion_ref.py "$d4_port" "$pdns_port" "$ref_lines")"
  ref_rate="$(echo "$ref_out" | get lines_per_sec)"
  ref_bytes="$(echo "$ref_out" | get bytes_per_record)"
fi

ratio() { python3 -c "print(f'{$1/$2:.2f}')" 2>/dev/null || echo -; }
run_dir="${BENCH_RUN_DIR:-bench/runs/$(date -u +%Y-%m-%d)-d4}"
mkdir -p "$run_dir"
{
echo "command: bench/d4/run.sh $records $ref_lines   ($(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "redis $(redis-server --version | awk '{print $3}'), $(nproc) cores, records=$records ref_lines=$ref_lines"
echo "reference redis-benchmark SET -P 64:      ${set_rate} commands/s"
echo "RedisStore write:                         ${store_rate} records/s ($(python3 -c "print(round($store_rate*5))" 2>/dev/null || echo -) commands/s, $(ratio "$store_rate*5" "$set_rate") of SET rate), server ${store_usec} us/record"
echo "RedisStore write, 3-master cluster:       ${cluster_rate} records/s ($((records / 4)) records, per-key commands)"
echo "D4 queue -> RedisStore:                   ${queue_rate} lines/s (distinct lines), ${queue_real_rate} lines/s (realistic: N/10 records, skewed; store server ${queue_real_usec} us/line)"
echo "serve [[inputs]] d4 -> redis store:       ${serve_redis_distinct} lines/s distinct, ${serve_redis_real} lines/s realistic"
echo "serve [[inputs]] d4 -> rocksdb store:     ${serve_rocks_distinct} lines/s distinct, ${serve_rocks_real} lines/s realistic"
echo "D4 pdns-ingestion.py loop (reference):    ${ref_rate} lines/s  -> ours x$(ratio "$queue_rate" "$ref_rate")"
echo "Redis memory per distinct record:         ours ${store_bytes} B, D4 writes ${ref_bytes} B"
for line in "${ab_lines[@]}"; do echo "$line"; done
} | tee "$run_dir/result.txt"
