# Sourced by the scripts that drive a live `apnsim serve`: builds the binary and starts it on
# ephemeral ports with throwaway certificates in "$work", stopped and cleaned up on exit.
# Usage: serve_debug LOG TOKEN           (debug build, control API behind TOKEN)
#        serve_built PROFILE LOG [TOKEN] (PROFILE: debug or release; LOG "": $work/serve.log)
# Both set $work and $pid; $work/ready.json names every address.
serve_built() {
  local profile=$1 log=$2 token=${3:-}
  # The release build is the whole package, as every other script builds it (one set of features,
  # so the scripts never rebuild each other's binary).
  if [ "$profile" = release ]; then cargo build --release --quiet; else cargo build --quiet --bin apnsim; fi
  work="$(mktemp -d)"
  trap serve_debug_cleanup EXIT
  [ -n "$log" ] || log=$work/serve.log
  local auth=()
  [ -n "$token" ] && auth=(--control-token "$token")
  "target/$profile/apnsim" serve --certs "$work/certs" --ready-file "$work/ready.json" \
    "${auth[@]}" --legacy-port 0 --feedback-port 0 --sandbox-legacy-port 0 \
    --sandbox-feedback-port 0 --http2-port 0 --sandbox-http2-port 0 --control-port 0 \
    --manage-broadcast-port 0 --sandbox-manage-broadcast-port 0 \
    >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
  [ -s "$work/ready.json" ] || { cat "$log"; echo "apnsim serve did not become ready" >&2; exit 1; }
}

serve_debug() {
  serve_built debug "$1" "$2"
}

serve_debug_cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
