#!/usr/bin/env bash
# Builds dnsrecall (installing the one system package the build needs),
# imports the sample shipped in the repository, and serves the query API on
# 127.0.0.1:8400 from the embedded store in ./dnsrecall-data.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg-query -W -f='${Status}' libclang-dev 2>/dev/null | grep -q "install ok installed"; then
  echo "== installing libclang-dev (RocksDB's bindings need it)"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libclang-dev >/dev/null
fi
cargo run --release --locked -- import samples/sample.cof.ndjson
exec cargo run --release --locked -- serve "$@"
