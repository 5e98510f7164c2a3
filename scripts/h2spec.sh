#!/usr/bin/env bash
# Runs h2spec's generic and http2 server cases over TLS against a real `apnsim serve`
# (release build, ephemeral ports, throwaway certificates). Exits non-zero unless every case passes.
set -euo pipefail
cd "$(dirname "$0")/.."
h2spec=$(scripts/install-h2spec.sh)
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/apnsim serve --certs "$work/certs" --ready-file "$work/ready.json" \
  --legacy-port 0 --feedback-port 0 --sandbox-legacy-port off --sandbox-feedback-port off \
  --http2-port 0 --sandbox-http2-port off >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
[ -s "$work/ready.json" ] || { cat "$work/serve.log"; echo "apnsim did not become ready" >&2; exit 1; }
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http2"].rsplit(":",1)[1])' "$work/ready.json")
out="$work/h2spec.txt"
"$h2spec" -h 127.0.0.1 -p "$port" -t -k -o 5 -j target/h2spec-junit.xml generic http2 >"$out" 2>&1 || true
summary=$(tail -n 1 "$out")
echo "h2spec against apnsim (TLS, port $port): $summary"
if ! echo "$summary" | grep -Eq '^[0-9]+ tests, [0-9]+ passed, 0 skipped, 0 failed$'; then
  grep -E '×|failed' "$out" | head -40 || true
  exit 1
fi
passed=$(echo "$summary" | sed -E 's/^[0-9]+ tests, ([0-9]+) passed.*/\1/')
echo "h2spec: $passed passed, 0 failed"
