#!/usr/bin/env bash
# Installs h2spec (the HTTP/2 conformance suite apnsim's own HTTP/2 layer is proven against) with
# `go install` into target/tools/bin. Prints the binary's path. Needs Go (the machine has it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir="$PWD/target/tools/bin"
mkdir -p "$bin_dir"
if [ ! -x "$bin_dir/h2spec" ]; then
  command -v go >/dev/null || { echo "install-h2spec: go is required" >&2; exit 1; }
  # The module proxy serves h2spec only as v2.2.1+incompatible (its v2 tags have no go.mod), which
  # `go install pkg@version` refuses; so build it inside a throwaway module that requires it.
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  (
    cd "$build"
    go mod init apnsim.local/h2spec-build >/dev/null 2>&1
    cat >tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/summerwind/h2spec/cmd/h2spec"
GO
    go get github.com/summerwind/h2spec@v2.2.1+incompatible >&2
    go mod tidy >&2
    go build -o "$bin_dir/h2spec" github.com/summerwind/h2spec/cmd/h2spec >&2
  )
fi
echo "$bin_dir/h2spec"
