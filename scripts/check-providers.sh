#!/usr/bin/env bash
# Installs every provider of fixtures/providers (scripts/install-providers.sh, cached in
# target/providers) and runs each once per protocol/auth it declares against a fresh
# `apnsim serve` (release build, ephemeral ports, throwaway certificates) with a
# 3-notification happy-path plan. A run PASSes when the driver exits 0, prints {"done":true},
# reports all 3 "sent", and apnsim's journal shows exactly those 3 tokens accepted.
# Prints PASS/FAIL per provider/protocol/auth/environment; exits non-zero on any FAIL.
# CHECK_PROVIDERS="apn curl" limits the providers; CHECK_ENVIRONMENTS="production sandbox"
# (default production) adds environments; APNSIM_BIN=path uses that binary instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."
providers=${CHECK_PROVIDERS:-"naive-simple pushjack apn aioapns node-apn pushy apns2 curl"}
environments=${CHECK_ENVIRONMENTS:-production}

# shellcheck disable=SC2086
scripts/install-providers.sh $providers
if [ -z "${APNSIM_BIN:-}" ]; then
  cargo build --release --quiet
  APNSIM_BIN=target/release/apnsim
fi

work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
"$APNSIM_BIN" serve --certs "$work/certs" --ready-file "$work/ready.json" \
  --legacy-port 0 --feedback-port 0 --sandbox-legacy-port 0 --sandbox-feedback-port 0 \
  --http2-port 0 --sandbox-http2-port 0 --control-port 0 >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
[ -s "$work/ready.json" ] || { cat "$work/serve.log"; echo "apnsim did not become ready" >&2; exit 1; }

python3 - "$work/plan.json" <<'PY'
import json, sys
notes = [{"id": i, "token": ("%02x" % (0x11 * i)) * 32,
          "payload": {"aps": {"alert": "apnsim check"}},
          "expiry": 0, "priority": 10, "push_type": "alert", "collapse_id": None}
         for i in (1, 2, 3)]
json.dump({"notifications": notes, "read_feedback": False, "pace_ms": 0}, open(sys.argv[1], "w"))
PY

failed=0
for name in $providers; do
  toml="fixtures/providers/$name/provider.toml"
  combos=$(python3 -c '
import sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
for p in c["protocols"]:
    for a in c["auth"]:
        print(p, a)' "$toml")
  while read -r protocol auth; do
    for environment in $environments; do
      label="$name $protocol $auth $environment"
      out="$work/run-$name-$protocol-$auth-$environment.json"
      if scripts/run-provider.py "$name" --protocol "$protocol" --auth "$auth" \
          --environment "$environment" --ready "$work/ready.json" --certs "$work/certs" \
          --plan "$work/plan.json" --timeout 120 --expect-accepted >"$out" 2>"$out.err"; then
        echo "PASS $label"
      else
        echo "FAIL $label"
        failed=$((failed + 1))
        cat "$out" "$out.err" | head -c 4000 | sed 's/^/    /'
        echo
      fi
    done
  done <<<"$combos"
done

if [ "$failed" -gt 0 ]; then
  echo "check-providers: $failed run(s) failed"
  exit 1
fi
echo "check-providers: all runs passed"
