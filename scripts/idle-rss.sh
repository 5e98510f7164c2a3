#!/usr/bin/env bash
# Memory of idle connections and latency beside them (issues 12 and 15), on a real `apnsim serve`
# built in release: 10,000 idle TLS connections on the legacy gateway, then 10,000 on the HTTP/2
# port (each opened with a preface and SETTINGS). Prints the server's RSS before and after, the
# bytes per connection, and p50/p99 of 1,000 HTTP/2 requests on an active connection while the
# idle ones are open; fails when 10k idle legacy connections reach 200 MB or either reaches 1 GiB.
# The client raises its own open-file limit; the server raises its to the hard limit.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo test --release --test hostile_rss -- --ignored --nocapture --test-threads=1 2>&1 |
    grep -E '^(legacy|http2):|^test |panicked|assert|FAILED|^test result'
