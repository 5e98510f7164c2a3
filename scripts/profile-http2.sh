#!/usr/bin/env bash
# Instructions per request of `apnsim serve` in HTTP/2 APNs mode, counted by valgrind's callgrind.
#
#   scripts/profile-http2.sh                     # build, profile, print Ir/request and the top functions
#   PROFILE_REQUESTS=50000 scripts/profile-http2.sh
#   APNSIM_BIN=/path/to/apnsim scripts/profile-http2.sh   # profile another build (before/after a change)
#
# What it measures: one `apnsim serve --threads 1` (HTTP/2 listener only, token auth, full APNs
# validation, engine, journal) runs under `valgrind --tool=callgrind`; h2load sends
# PROFILE_REQUESTS (default 20,000) POSTs of a ~200-byte alert over TLS (-c 8 -m 100, one JWT for
# every connection, signed by examples/sign-jwt.rs --der, like scripts/bench-http2.sh), then the
# server stops on SIGTERM. An idle run first (the same 8 connections, one request each) is the
# baseline: start-up, certificates, TLS handshakes and shutdown. The figure printed is
#   (Ir of the loaded run - Ir of the idle run) / (PROFILE_REQUESTS - 8)
# i.e. the instructions one request costs the whole process (all threads, TLS included), which
# unlike req/s does not depend on what else the machine is running (it still moves by about 1%
# between runs: how many requests each read brings depends on h2load's timing). Then
# callgrind_annotate's top functions of the loaded run, inclusive and self (PROFILE_TOP lines,
# default 30).
# The callgrind files stay in PROFILE_OUT (default target/profile-http2) for kcachegrind or
# callgrind_annotate. Exits non-zero if a tool is missing or a request does not get a 2xx.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
REQUESTS=${PROFILE_REQUESTS:-20000}
CLIENTS=8
STREAMS=100
TOP=${PROFILE_TOP:-30}
OUT=${PROFILE_OUT:-$ROOT/target/profile-http2}
TOPIC=com.example.app
DEVICE=$(printf '%064x' 0 | tr 0 a | sed 's/^a/1/')

die() { echo "profile-http2: $*" >&2; exit 1; }

for t in valgrind callgrind_annotate h2load; do
    command -v "$t" >/dev/null 2>&1 || die "$t missing: apt-get install valgrind nghttp2-client"
done
((REQUESTS > CLIENTS)) || die "PROFILE_REQUESTS must be more than $CLIENTS"

cargo build --release --quiet --bin apnsim --example sign-jwt
BIN=${APNSIM_BIN:-$ROOT/target/release/apnsim}
[[ -x $BIN ]] || die "$BIN is not an executable"

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT"

CERTS=$WORK/certs
"$BIN" certs --dir "$CERTS" --topic "$TOPIC" >/dev/null
JWT=$("$ROOT/target/release/examples/sign-jwt" --der "$CERTS")
printf '{"aps":{"alert":{"title":"Benchmark","body":"A notification of about two hundred bytes, as providers send them: a title, a body, a badge and a sound."},"badge":1,"sound":"default"},"id":42}' >"$WORK/body.json"

# Every listener but HTTP/2 off (a build without some listener does not know its flag).
OFF=()
for f in legacy-port feedback-port sandbox-legacy-port sandbox-feedback-port sandbox-http2-port \
    manage-broadcast-port sandbox-manage-broadcast-port; do
    "$BIN" serve --help | grep -q -- "--$f " && OFF+=("--$f" off)
done

# profile NAME N: one server under callgrind, N requests; prints the run's total Ir.
profile() {
    local name=$1 n=$2 i port
    rm -f "$WORK/$name.ready" "$OUT/$name.out"
    valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.out" \
        "$BIN" serve --certs "$CERTS" --ready-file "$WORK/$name.ready" "${OFF[@]}" \
        --http2-port 0 --control-port 0 --threads 1 >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    for ((i = 0; i < 1200; i++)); do [[ -s $WORK/$name.ready ]] && break; sleep 0.1; done
    [[ -s $WORK/$name.ready ]] || { tail -20 "$WORK/$name.log" >&2; die "$name: server did not get ready"; }
    port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http2"].rsplit(":",1)[1])' "$WORK/$name.ready")
    h2load -n "$n" -c "$CLIENTS" -m "$STREAMS" -d "$WORK/body.json" \
        -H "apns-topic: $TOPIC" -H 'apns-push-type: alert' -H 'apns-priority: 10' \
        -H 'content-type: application/json' -H "authorization: bearer $JWT" \
        "https://127.0.0.1:$port/3/device/$DEVICE" >"$WORK/$name.h2load" 2>&1 ||
        { cat "$WORK/$name.h2load" >&2; die "h2load failed ($name)"; }
    local done2xx
    done2xx=$(awk '/^status codes:/ { print $3 }' "$WORK/$name.h2load")
    [[ $done2xx == "$n" ]] || { cat "$WORK/$name.h2load" >&2; die "$name: $done2xx of $n answered 2xx"; }
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
    awk '/^(summary|totals):/ { print $2; exit }' "$OUT/$name.out"
}

IDLE=$(profile idle "$CLIENTS")
LOADED=$(profile loaded "$REQUESTS")
[[ -n $IDLE && -n $LOADED ]] || die "no totals in the callgrind output"

echo "apnsim serve --threads 1, HTTP/2 APNs mode (token auth, validation, journal), TLS"
echo "h2load -n $REQUESTS -c $CLIENTS -m $STREAMS, POST $(wc -c <"$WORK/body.json")-byte body; binary $BIN"
echo "Ir idle run ($CLIENTS requests): $IDLE"
echo "Ir loaded run ($REQUESTS requests): $LOADED"
echo "Ir per request: $(((LOADED - IDLE) / (REQUESTS - CLIENTS)))"
echo
# callgrind_annotate's lines, paths shortened (registry and toolchain prefixes, object names).
annotate() { # extra callgrind_annotate args...
    callgrind_annotate "$@" "$OUT/loaded.out" 2>/dev/null >"$WORK/annotate.txt" || true
    sed -n '/^Ir  *file:function/,$p' "$WORK/annotate.txt" | sed -n '3,$p' |
        sed -E 's#/root/\.cargo/registry/src/[^/]+/##; s#/rustc/[0-9a-f]+/##; s# \[[^]]*\]$##'
}
echo "--- top inclusive (loaded run; runtime and thread plumbing left out) ---"
annotate --inclusive=yes |
    grep -Ev 'tokio::runtime::|std::sys::|start_thread|FnOnce|TrackedFuture|tokio::task::|Instrumented' |
    sed -n "1,${TOP}p"
echo
echo "--- top self (loaded run) ---"
annotate | sed -n "1,${TOP}p"
