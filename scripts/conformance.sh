#!/usr/bin/env bash
# Installs every bundled provider (scripts/install-providers.sh, cached in target/providers) and
# runs the whole conformance matrix against them with the committed expected grades
# (fixtures/conformance/expected.toml). Reports: target/conformance/{index.html,index.json,junit.xml}
# plus per-run artefacts under target/conformance/runs/<provider>/<case>/.
# Exits non-zero when any grade differs from the expectations, or when a cell's grade differed
# between its runs (every cell runs CONFORMANCE_REPEAT times, default 3; cells run concurrently).
#   CONFORMANCE_PROVIDERS="apn curl"   limit the providers (default: every folder with a provider.toml)
#   CONFORMANCE_CASES="L2.*,H1.1"      limit the cases
#   APNSIM_BIN=path                    use that binary instead of building one
#   CONFORMANCE_REPEAT=3               runs per cell (a cell whose grades differ is flaky: failure)
#   CONFORMANCE_JOBS=N                 cells at once (default: the number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${CONFORMANCE_PROVIDERS:-}" ]; then
  providers=$CONFORMANCE_PROVIDERS
else
  providers=$(for d in fixtures/providers/*/provider.toml; do basename "$(dirname "$d")"; done)
fi
installable=()
for p in $providers; do
  [ "$p" = apnsim-send ] || installable+=("$p")
done
scripts/install-providers.sh "${installable[@]}"

if [ -z "${APNSIM_BIN:-}" ]; then
  cargo build --release --quiet
  APNSIM_BIN=target/release/apnsim
fi

args=()
for p in $providers; do args+=(--provider "fixtures/providers/$p"); done
[ -n "${CONFORMANCE_CASES:-}" ] && args+=(--cases "$CONFORMANCE_CASES")
[ -n "${CONFORMANCE_JOBS:-}" ] && args+=(--jobs "$CONFORMANCE_JOBS")
args+=(--repeat "${CONFORMANCE_REPEAT:-3}")
rm -rf target/conformance
exec "$APNSIM_BIN" conformance "${args[@]}" --report-dir target/conformance \
  --tools-dir target/providers --expect fixtures/conformance/expected.toml
