#!/usr/bin/env bash
# The inspector's browser tests: a live `apnsim serve` (with --control-token), Debian's
# Chromium driven by playwright-core, `apnsim send` as the real provider. Screenshots of every
# view land in target/browser/. Fails (never skips) when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-browser-tools.sh
source scripts/lib/serve-debug.sh
out="$PWD/target/browser"
rm -rf "$out" && mkdir -p "$out"
serve_debug "$out/serve.log" browser-test-token
APNSIM_BIN="$PWD/target/debug/apnsim" APNSIM_READY="$work/ready.json" APNSIM_CERTS="$work/certs" \
  APNSIM_CONTROL_TOKEN=browser-test-token SCREENSHOTS="$out" \
  node tests/browser/inspector.test.mjs
