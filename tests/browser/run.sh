#!/usr/bin/env bash
# Browser tests of the web UI: imports tests/data/ui/fixture.cof.ndjson and
# 10,500 generated records below big.example (the streamed 10,000-row view)
# into a fresh data directory, starts `dnsrecall serve` on a free loopback port
# with an API key, and runs ui.test.mjs (Playwright driving Debian's
# chromium). Needs the debug binary built by `cargo test --workspace`
# (scripts/test.sh runs this after it), chromium and `npm ci` done here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${DNSRECALL_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/dnsrecall}"
[ -x "$bin" ] || { echo "no dnsrecall binary at $bin (run cargo test --workspace first)" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium is missing (apt-get install chromium)" >&2; exit 1; }
[ -d "$here/node_modules/playwright-core" ] || (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)

work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
key="browser-test-key"
cat > "$work/dnsrecall.toml" <<TOML
[api]
api_keys = ["$key"]
TOML
python3 - > "$work/big.cof.ndjson" <<'GEN'
import json
t = 1_700_000_000
for i in range(10_500):
    print(json.dumps({"rrname": f"h{i}.big.example", "rrtype": "A", "rdata": f"10.{i >> 8 & 255}.{i & 255}.1",
                      "time_first": t + i, "time_last": t + 7 * i, "count": 1 + i % 50, "sensor_id": "sensor-2"}))
GEN
"$bin" --config "$work/dnsrecall.toml" --data-dir "$work/data" import --format cof \
  "$root/tests/data/ui/fixture.cof.ndjson" "$work/big.cof.ndjson" 2>"$work/import.log"
"$bin" --config "$work/dnsrecall.toml" --data-dir "$work/data" serve --listen "127.0.0.1:$port" 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/openapi.json" && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done

cd "$here"
DNSRECALL_URL="http://127.0.0.1:$port" DNSRECALL_KEY="$key" \
  SCREENSHOTS="${SCREENSHOTS:-$work/screenshots}" DOWNLOADS="$work/downloads" \
  node --test --test-concurrency=1 ui.test.mjs
