#!/usr/bin/env bash
# Accept-to-verdict latency on an idle server (issue 15: p99 <= 1 ms), legacy and HTTP/2, 10,000
# notifications one at a time (benches/latency.rs, release build). Prints p50/p99 with the target.
#   scripts/latency.sh                 # APNSIM_LATENCY_N=N for another count
set -euo pipefail
cd "$(dirname "$0")/.."
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load:$(uptime | sed 's/.*load average://')"
cargo bench --quiet --bench latency
