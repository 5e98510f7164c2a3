#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for N seconds each (default 30), on nightly with
# cargo-fuzz, installing both if missing. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# An hour each: scripts/fuzz.sh 3600. New inputs go to fuzz/corpus/<target>/; commit only what
# `cargo fuzz cmin` keeps (inputs that reach new coverage), never the whole run's output.
# Exits non-zero on the first crash (the reproducer is in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
shift || true
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi
# One build for every target (the bulk of the cost), then a fixed time each.
cargo +nightly fuzz build --fuzz-dir fuzz >/dev/null
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "fuzz: $t for ${secs}s"
    cargo +nightly fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        grep -E '^(stat::|#[0-9]+ +DONE|==|SUMMARY|Done)' || true
    if [ -n "$(ls -A "fuzz/artifacts/$t" 2>/dev/null)" ]; then
        echo "fuzz: $t crashed; reproducer in fuzz/artifacts/$t" >&2
        exit 1
    fi
done
