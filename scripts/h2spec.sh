#!/usr/bin/env bash
# Runs h2spec's generic and http2 server cases over TLS against a real `apnsim serve`
# (release build, ephemeral ports, throwaway certificates). Exits non-zero unless every case passes.
set -euo pipefail
cd "$(dirname "$0")/.."
h2spec=$(scripts/install-h2spec.sh)
# shellcheck source=scripts/lib/serve-debug.sh
. scripts/lib/serve-debug.sh
serve_built release ""
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
