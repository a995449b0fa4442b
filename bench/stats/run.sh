#!/usr/bin/env bash
# Statistics benchmark: ingest messages/s with and without Stats::observe
# (same process, alternating runs: the reference run is the one without),
# and RSS after 10M unique names from 1M unique clients against the bound.
# Usage: bench/stats/run.sh [ROUNDS] [NAMES] [CLIENTS] [BOUND_MIB]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-5}"; names="${2:-10000000}"; clients="${3:-1000000}"; bound="${4:-64}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dnsrecall-target}"
nice cargo build -q --release -p dnsrecall-stats --example stats_bench
bin="$CARGO_TARGET_DIR/release/examples/stats_bench"
data=tests/data/dnstap/unbound
echo "== $(date -u +%FT%TZ) $(uname -m) $(nproc) cores"
echo "== throughput ($rounds rounds of 200000 messages each way)"
"$bin" throughput "$rounds" "$data/unbound_resolver.dnstap" "$data/unbound_auth.dnstap" "$data/unbound_dnsperf_resolver.dnstap"
echo "== memory: $names unique names, $clients clients, bound $bound MiB"
"$bin" rss "$names" "$clients" "$bound" "$data/unbound_resolver.dnstap"
