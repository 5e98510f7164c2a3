# Sourced by the scripts that drive a live `apnsim serve`: builds the debug binary and starts it
# on ephemeral ports with throwaway certificates in "$work", stopped and cleaned up on exit.
# Usage: serve_debug LOG TOKEN  (sets $work, $pid; $work/ready.json names every address)
serve_debug() {
  local log=$1 token=$2
  cargo build --quiet --bin apnsim
  work="$(mktemp -d)"
  trap serve_debug_cleanup EXIT
  target/debug/apnsim serve --certs "$work/certs" --ready-file "$work/ready.json" \
    --control-token "$token" --legacy-port 0 --feedback-port 0 --sandbox-legacy-port 0 \
    --sandbox-feedback-port 0 --http2-port 0 --sandbox-http2-port 0 --control-port 0 \
    >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
  [ -s "$work/ready.json" ] || { cat "$log"; echo "apnsim serve did not become ready" >&2; exit 1; }
}

serve_debug_cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
