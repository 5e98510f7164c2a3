#!/usr/bin/env bash
# The control API against its own OpenAPI document: schemathesis (pinned by
# tests/api/requirements.txt, installed into target/api-fuzz/venv) fuzzes every route of a live
# `apnsim serve` and fails on any 5xx, any response that does not match the document, and the
# other checks of tests/api/schemathesis.toml. Fails (never skips) when a tool is missing.
# Usage: scripts/api-fuzz.sh [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-40}
out="$PWD/target/api-fuzz"
mkdir -p "$out"
venv="$out/venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum tests/api/requirements.txt | cut -c1-64)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r tests/api/requirements.txt
  echo "$want" >"$stamp"
fi
source scripts/lib/serve-debug.sh
serve_debug "$out/serve.log" api-fuzz-token
control=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$work/ready.json")
base="http://$control"
auth=(-H "Authorization: Bearer api-fuzz-token")
# A registered token, so the device routes reach past 404 (schemathesis cannot create one).
token=$(printf 'ab%.0s' $(seq 1 32))
curl -fsS "${auth[@]}" -H 'content-type: application/json' \
  -d "{\"token\":\"$token\"}" "$base/tokens" >/dev/null
status=0
"$venv/bin/st" --config-file tests/api/schemathesis.toml run "$base/openapi.json" \
  --max-examples "$examples" --workers 1 --seed 1 \
  --header "Authorization: Bearer api-fuzz-token" \
  --report junit --report-dir "$out" >"$out/schemathesis.log" 2>&1 || status=$?
tail -n 40 "$out/schemathesis.log"
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=
if grep -q "panicked" "$out/serve.log"; then
  echo "api-fuzz: apnsim panicked (see $out/serve.log)" >&2
  exit 1
fi
exit "$status"
