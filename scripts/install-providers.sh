#!/usr/bin/env bash
# Installs the third-party push provider libraries the conformance suite drives, each into
# target/providers/<name>/ with an exact pinned version (see fixtures/providers/README.md).
# Usage: scripts/install-providers.sh [name…]   (no name = every provider)
# Idempotent: a provider whose target/providers/<name>/.installed matches its pin (version +
# hash of the fixture files it is built from) is skipped.
# Fails loudly (non-zero, with the tool's output) when an install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
fixtures="$root/fixtures/providers"
out="$root/target/providers"
mkdir -p "$out"

# name -> pin (what .installed records; change it to force a reinstall)
declare -A PIN=(
  [naive-simple]="stdlib"
  [naive-tls10]="stdlib"
  [pushjack]="pushjack==1.6.0"
  [apn]="apn@1.7.8"
  [aioapns]="aioapns==4.0"
  [node-apn]="@parse/node-apn@8.1.0"
  [pushy]="com.eatthepath:pushy:0.15.4"
  [apns2]="github.com/sideshow/apns2@v0.25.0"
  [curl]="system-curl"
)
ALL=(naive-simple naive-tls10 pushjack apn aioapns node-apn pushy apns2 curl)
# name -> files of fixtures/providers/<name> the install builds from (their hash joins the pin,
# so editing one reinstalls)
declare -A INPUTS=(
  [pushjack]="requirements.txt"
  [aioapns]="requirements.txt"
  [apn]="package.json package-lock.json"
  [node-apn]="package.json package-lock.json"
  [pushy]="pom.xml Driver.java"
  [apns2]="go.mod go.sum main.go"
)

log() { echo "install-providers: $*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# Runs a command quietly, printing its whole output only when it fails.
quiet() {
  local logf
  logf=$(mktemp)
  if ! "$@" >"$logf" 2>&1; then
    cat "$logf" >&2
    rm -f "$logf"
    return 1
  fi
  rm -f "$logf"
}

# pip into a virtualenv, every distribution pinned by fixtures/providers/<name>/requirements.txt
python_venv() { # name
  local name=$1 dir="$out/$1"
  rm -rf "$dir/venv"
  quiet python3 -m venv "$dir/venv" || die "python3 -m venv $dir/venv"
  quiet "$dir/venv/bin/pip" install --disable-pip-version-check --no-input \
    -r "$fixtures/$name/requirements.txt" || die "pip install -r $fixtures/$name/requirements.txt"
}

# npm ci from fixtures/providers/<name>/package.json + package-lock.json (exact tree)
npm_local() { # name
  local name=$1 dir="$out/$1"
  command -v npm >/dev/null || die "npm not found"
  rm -rf "$dir/node_modules"
  cp "$fixtures/$name/package.json" "$fixtures/$name/package-lock.json" "$dir/"
  quiet npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error || die "npm ci ($name)"
}

install_one() {
  local name=$1
  local pin=${PIN[$name]:-}
  [ -n "$pin" ] || die "unknown provider '$name' (known: ${ALL[*]})"
  local f
  for f in ${INPUTS[$name]:-}; do
    [ -f "$fixtures/$name/$f" ] || die "$fixtures/$name/$f missing"
    pin="$pin $(sha256sum "$fixtures/$name/$f" | cut -c1-16)"
  done
  local dir="$out/$name"
  if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$pin" ]; then
    log "$name: already installed (${PIN[$name]})"
    return 0
  fi
  log "$name: installing ${PIN[$name]}"
  mkdir -p "$dir"
  rm -f "$dir/.installed"
  case $name in
    naive-simple)
      python3 -c 'import ssl, socket, json, struct' || die "python3 stdlib ssl missing"
      ;;
    naive-tls10)
      python3 -c 'import ssl; ssl.TLSVersion.TLSv1' || die "python3 ssl without TLSVersion"
      ;;
    pushjack)
      python_venv pushjack
      "$dir/venv/bin/python" -c 'import pushjack' || die "import pushjack"
      ;;
    aioapns)
      python_venv aioapns
      "$dir/venv/bin/python" -c 'import aioapns' || die "import aioapns"
      ;;
    apn)
      npm_local apn
      ;;
    node-apn)
      npm_local node-apn
      ;;
    pushy)
      command -v mvn >/dev/null || die "mvn not found"
      rm -rf "$dir/lib" "$dir/classes"
      quiet mvn -B -q -f "$fixtures/pushy/pom.xml" -Dmaven.repo.local="$out/maven-repo" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/lib" \
        || die "mvn dependency:copy-dependencies (pushy)"
      mkdir -p "$dir/classes"
      quiet javac -cp "$dir/lib/*" -d "$dir/classes" "$fixtures/pushy/Driver.java" \
        || die "javac Driver.java (pushy)"
      ;;
    apns2)
      command -v go >/dev/null || die "go not found"
      mkdir -p "$dir/bin" "$out/go"
      (cd "$fixtures/apns2" && GOPATH="$out/go" GOMODCACHE="$out/go/pkg/mod" \
        GOFLAGS=-modcacherw GOTOOLCHAIN=local quiet go build -o "$dir/bin/driver" .) \
        || die "go build (apns2)"
      ;;
    curl)
      curl --version | grep -q HTTP2 || die "curl lacks HTTP/2"
      command -v openssl >/dev/null || die "openssl not found"
      ;;
  esac
  echo "$pin" >"$dir/.installed"
  log "$name: installed"
}

if [ $# -eq 0 ]; then set -- "${ALL[@]}"; fi
for n in "$@"; do install_one "$n"; done
