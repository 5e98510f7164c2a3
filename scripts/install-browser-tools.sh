#!/usr/bin/env bash
# Installs what the inspector's browser tests drive: Debian's Chromium (apt) and playwright-core
# (npm, pinned by tests/browser/package-lock.json). No browser download: playwright-core only
# drives the system Chromium at /usr/bin/chromium. Needs root (CI and the dev machines are).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
if ! [ -x /usr/bin/chromium ]; then need+=(chromium); fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then need+=(nodejs npm); fi
if [ ${#need[@]} -gt 0 ]; then
  echo "install-browser-tools: installing ${need[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
if ! [ -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2)
fi
/usr/bin/chromium --version >&2
