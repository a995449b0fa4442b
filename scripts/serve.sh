#!/usr/bin/env bash
# Builds dnsrecall (installing the system packages the build needs),
# imports the sample shipped in the repository, and serves the query API on
# 127.0.0.1:8400 from the embedded store in ./dnsrecall-data.
set -euo pipefail
cd "$(dirname "$0")/.."
# RocksDB's bindings need libclang; live capture links libpcap.
missing=()
for pkg in libclang-dev libpcap-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (the build needs them)"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo run --release --locked -- import samples/sample.cof.ndjson
exec cargo run --release --locked -- serve "$@"
