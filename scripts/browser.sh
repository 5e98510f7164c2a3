#!/usr/bin/env bash
# The inspector's browser tests: a live `apnsim serve` (with --control-token), Debian's
# Chromium driven by playwright-core, `apnsim send` as the real provider. Screenshots of every
# view land in target/browser/. Fails (never skips) when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-browser-tools.sh
cargo build --quiet --bin apnsim
out="$PWD/target/browser"
rm -rf "$out" && mkdir -p "$out"
work="$(mktemp -d)"
cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
target/debug/apnsim serve --certs "$work/certs" --ready-file "$work/ready.json" \
  --control-token browser-test-token --legacy-port 0 --feedback-port 0 --sandbox-legacy-port 0 \
  --sandbox-feedback-port 0 --http2-port 0 --sandbox-http2-port 0 --control-port 0 \
  >"$out/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
[ -s "$work/ready.json" ] || { cat "$out/serve.log"; echo "apnsim serve did not become ready" >&2; exit 1; }
APNSIM_BIN="$PWD/target/debug/apnsim" APNSIM_READY="$work/ready.json" APNSIM_CERTS="$work/certs" \
  APNSIM_CONTROL_TOKEN=browser-test-token SCREENSHOTS="$out" \
  node tests/browser/inspector.test.mjs
