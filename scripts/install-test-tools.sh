#!/usr/bin/env bash
# Installs the system tools the test suite drives as real clients (curl with HTTP/2), from
# Debian's packages, only when they are missing. Needs root (CI and the dev machines are).
set -euo pipefail
need=()
if ! command -v curl >/dev/null || ! curl --version | grep -q HTTP2; then need+=(curl); fi
if [ ${#need[@]} -gt 0 ]; then
  echo "install-test-tools: installing ${need[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
command -v curl >/dev/null
