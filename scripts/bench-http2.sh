#!/usr/bin/env bash
# HTTP/2 throughput of apnsim beside h2o and nghttpd, measured with h2load in one run.
#
#   scripts/bench-http2.sh            # full run (a few minutes)
#   BENCH_QUICK=1 scripts/bench-http2.sh   # shorter run, e.g. for CI
#
# Servers, all TLS + ALPN h2 on loopback, same certificate, same h2load parameters
# (POST with a ~200-byte JSON body, -c 8 -m 100):
#   apnsim-layer  examples/h2layer.rs: apnsim's HTTP/2 layer with the default handler
#                 (200 + apns-id), no APNs validation, no journal
#   apnsim-apns   `apnsim serve`: full APNs validation, engine, journal, token auth
#                 (one JWT per connection, signed by examples/sign-jwt.rs --der, the form of
#                 Apple's openssl recipe, which every server here accepts)
#   apnsim-t1, apnsim-t2  the same with `--threads 1` and `--threads 2` (how req/s scales with cores)
#   h2o           h2o with an mruby handler answering 200
#   nghttpd       nghttpd serving an empty static file
#   pushy-accept  Pushy's MockApnsServer (benches/pushy-mock/PushyMock.java) with its accept-all handler
#   pushy-valid   Pushy's MockApnsServer with its validating handler and the same token key (it
#                 verifies the JWT's signature on every request: run with BENCH_PUSHY_VALID_REQUESTS,
#                 default REQUESTS/200, since it answers a few hundred req/s)
#                 Pushy comes from scripts/install-providers.sh pushy (Maven, target/providers/maven-repo).
#   apnsim-base   only with APNSIM_BASELINE=/path/to/another/apnsim: that build of `apnsim serve`,
#                 started like apnsim-apns, so two builds (before/after a change) are paired in one run
# Cores: with 2 or more, every server runs on core 0 and h2load on core 1 (taskset; BENCH_PIN=0
# turns this off), each server with one worker thread (apnsim --threads 1, h2o num-threads 1,
# nghttpd -n 1, Pushy's event loop sized by the JVM's one visible core), so the ratios compare the
# servers per core, not how each shares the machine with its client. apnsim-t1 and apnsim-t2
# (the scaling figure) run unpinned, h2load too: 2 worker threads need the second core.
# Prints req/s of each (median of BENCH_ROUNDS rounds, with min–max) and the ratios, each with its
# target from issue 15 (>= 1.5x h2o, >= 0.9x nghttpd, >= 4x Pushy accept-all); exits non-zero
# if a tool is missing or h2load reports a failed or errored request or a non-2xx status.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
    REQUESTS=${BENCH_REQUESTS:-50000}
    ROUNDS=${BENCH_ROUNDS:-1}
else
    REQUESTS=${BENCH_REQUESTS:-400000}
    ROUNDS=${BENCH_ROUNDS:-3}
fi
CLIENTS=${BENCH_CLIENTS:-8}
STREAMS=${BENCH_STREAMS:-100}
TOPIC=com.example.app
DEVICE=$(printf '%064x' 0 | tr 0 a | sed 's/^a/1/')

die() { echo "bench-http2: $*" >&2; exit 1; }

# Servers on core 0, h2load on core 1 (see the top of this file).
PIN=${BENCH_PIN:-1}
if [[ $PIN == 1 && $(nproc) -ge 2 ]]; then
    command -v taskset >/dev/null 2>&1 || die "taskset missing (util-linux)"
    ON_SERVER=(taskset -c 0)
    ON_CLIENT=(taskset -c 1)
    ONE=(--threads 1)
    H2O_THREADS=1
    NGHTTPD_THREADS=1
else
    PIN=0
    ON_SERVER=()
    ON_CLIENT=()
    ONE=()
    H2O_THREADS=$(nproc)
    NGHTTPD_THREADS=$(nproc)
fi

# --- tools ---------------------------------------------------------------------------------------
need_install=0
for t in h2load nghttpd h2o; do command -v "$t" >/dev/null 2>&1 || need_install=1; done
if [[ $need_install == 1 ]]; then
    [[ $(id -u) == 0 ]] || die "h2load/nghttpd/h2o missing and not root: apt-get install nghttp2-client nghttp2-server h2o"
    if ! apt-cache policy h2o 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client nghttp2-server h2o >/dev/null
fi
for t in h2load nghttpd h2o; do command -v "$t" >/dev/null 2>&1 || die "$t still missing after install"; done
h2o --version 2>/dev/null | grep -q 'mruby: YES' || die "this h2o has no mruby"
for t in java javac mvn; do command -v "$t" >/dev/null 2>&1 || die "$t missing (Pushy's mock needs a JDK and Maven)"; done
scripts/install-providers.sh pushy || die "scripts/install-providers.sh pushy failed"
PUSHY_LIB=$ROOT/target/providers/pushy/lib

# --- build ---------------------------------------------------------------------------------------
cargo build --release --quiet --bin apnsim --example h2layer --example sign-jwt
BIN=$ROOT/target/release

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

CERTS=$WORK/certs
"$BIN/apnsim" certs --dir "$CERTS" --topic "$TOPIC" >/dev/null
JWT=$("$BIN/examples/sign-jwt" --der "$CERTS")
manifest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$CERTS/manifest.json" "$1"; }
KEY_ID=$(manifest key_id)
TEAM_ID=$(manifest team_id)
mkdir -p "$WORK/pushy-classes"
javac -cp "$PUSHY_LIB/*" -d "$WORK/pushy-classes" benches/pushy-mock/PushyMock.java || die "javac PushyMock.java"
# A ~200-byte alert payload, like a real notification.
printf '{"aps":{"alert":{"title":"Benchmark","body":"A notification of about two hundred bytes, as providers send them: a title, a body, a badge and a sound."},"badge":1,"sound":"default"},"id":42}' >"$WORK/body.json"
BODY_LEN=$(wc -c <"$WORK/body.json")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() { # file seconds log
    local i
    for ((i = 0; i < $2 * 10; i++)); do [[ -s $1 ]] && return 0; sleep 0.1; done
    tail -20 "$3" >&2
    die "server did not get ready ($1)"
}
wait_port() { # port
    local i
    for ((i = 0; i < 100; i++)); do
        (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on port $1"
}
port_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http2"].rsplit(":",1)[1])' "$1"; }

# --- servers -------------------------------------------------------------------------------------
"${ON_SERVER[@]}" "$BIN/examples/h2layer" "$CERTS" "$WORK/layer.ready" >"$WORK/layer.log" 2>&1 &
PIDS+=($!)
wait_ready "$WORK/layer.ready" 20 "$WORK/layer.log"
LAYER_PORT=$(port_of "$WORK/layer.ready")

# Every listener but HTTP/2 off (a build without some listener does not know its flag).
off_flags() { # binary
    local f flags=()
    for f in legacy-port feedback-port sandbox-legacy-port sandbox-feedback-port sandbox-http2-port \
        manage-broadcast-port sandbox-manage-broadcast-port; do
        "$1" serve --help | grep -q -- "--$f " && flags+=("--$f" off)
    done
    echo "${flags[@]}"
}
OFF=$(off_flags "$BIN/apnsim")
# shellcheck disable=SC2086
"${ON_SERVER[@]}" "$BIN/apnsim" serve --certs "$CERTS" --ready-file "$WORK/apnsim.ready" $OFF \
    --http2-port 0 --control-port 0 "${ONE[@]}" >"$WORK/apnsim.log" 2>&1 &
APNSIM_PID=$!
PIDS+=($APNSIM_PID)
wait_ready "$WORK/apnsim.ready" 30 "$WORK/apnsim.log"
APNS_PORT=$(port_of "$WORK/apnsim.ready")

# serve_apnsim NAME [flags...]: one more `apnsim serve`, HTTP/2 only, unpinned; sets PORT_<NAME>.
serve_apnsim() {
    local name=$1
    shift
    # shellcheck disable=SC2086
    "$BIN/apnsim" serve --certs "$CERTS" --ready-file "$WORK/$name.ready" $OFF \
        --http2-port 0 --control-port 0 "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    wait_ready "$WORK/$name.ready" 30 "$WORK/$name.log"
    printf -v "PORT_${name//-/_}" '%s' "$(port_of "$WORK/$name.ready")"
}
serve_apnsim t1 --threads 1
serve_apnsim t2 --threads 2

# serve_pushy NAME MODE: Pushy's MockApnsServer; sets PORT_<NAME>.
serve_pushy() {
    local name=$1 mode=$2 port
    port=$(free_port)
    "${ON_SERVER[@]}" java -cp "$PUSHY_LIB/*:$WORK/pushy-classes" PushyMock "$mode" "$port" "$CERTS/server.pem" "$CERTS/server.key" \
        "$CERTS/token-key.pub.pem" "$KEY_ID" "$TEAM_ID" "$TOPIC" "$DEVICE" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    local i
    for ((i = 0; i < 300; i++)); do grep -q '^ready' "$WORK/$name.log" && break; sleep 0.1; done
    grep -q '^ready' "$WORK/$name.log" || { tail -20 "$WORK/$name.log" >&2; die "$name did not start"; }
    printf -v "PORT_${name//-/_}" '%s' "$port"
}
serve_pushy pushy_accept accept-all
serve_pushy pushy_valid validating

BASELINE=${APNSIM_BASELINE:-}
if [[ -n $BASELINE ]]; then
    [[ -x $BASELINE ]] || die "APNSIM_BASELINE=$BASELINE is not an executable"
    # shellcheck disable=SC2046
    "${ON_SERVER[@]}" "$BASELINE" serve --certs "$CERTS" --ready-file "$WORK/base.ready" $(off_flags "$BASELINE") \
        --http2-port 0 --control-port 0 "${ONE[@]}" >"$WORK/base.log" 2>&1 &
    PIDS+=($!)
    wait_ready "$WORK/base.ready" 30 "$WORK/base.log"
    BASE_PORT=$(port_of "$WORK/base.ready")
fi

H2O_PORT=$(free_port)
cat >"$WORK/h2o.conf" <<CONF
listen:
  host: 127.0.0.1
  port: $H2O_PORT
  ssl:
    certificate-file: $CERTS/server.pem
    key-file: $CERTS/server.key
user: root
num-threads: $H2O_THREADS
pid-file: $WORK/h2o.pid
error-log: $WORK/h2o.log
hosts:
  default:
    paths:
      /:
        mruby.handler: |
          Proc.new do |env|
            [200, {}, []]
          end
CONF
"${ON_SERVER[@]}" h2o -c "$WORK/h2o.conf" >>"$WORK/h2o.log" 2>&1 &
PIDS+=($!)
wait_port "$H2O_PORT"

NGHTTPD_PORT=$(free_port)
mkdir -p "$WORK/htdocs/3/device"
: >"$WORK/htdocs/3/device/$DEVICE"
"${ON_SERVER[@]}" nghttpd -n "$NGHTTPD_THREADS" -d "$WORK/htdocs" "$NGHTTPD_PORT" "$CERTS/server.key" "$CERTS/server.pem" \
    >"$WORK/nghttpd.log" 2>&1 &
PIDS+=($!)
wait_port "$NGHTTPD_PORT"

# --- load ----------------------------------------------------------------------------------------
# run NAME PORT [extra h2load args...]: one h2load run; prints req/s, checks every request got a 2xx.
run() {
    local name=$1 port=$2 out=$WORK/$1.h2load
    shift 2
    local n=${N:-$REQUESTS} on=("${ON_CLIENT[@]}")
    [[ $name == apnsim-t[12] ]] && on=()
    "${on[@]}" h2load -n "$n" -c "$CLIENTS" -m "$STREAMS" -d "$WORK/body.json" \
        -H "apns-topic: $TOPIC" -H 'apns-push-type: alert' -H 'apns-priority: 10' -H 'content-type: application/json' \
        "$@" "https://127.0.0.1:$port/3/device/$DEVICE" >"$out" 2>&1 || { cat "$out" >&2; die "h2load failed against $name"; }
    local done2xx failed errored rps
    rps=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$out")
    failed=$(awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed/) print $i }' "$out")
    errored=$(awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^errored/) print $i }' "$out")
    done2xx=$(awk '/^status codes:/ { print $3 }' "$out")
    if [[ -z $rps || $failed != 0 || $errored != 0 || $done2xx != "$n" ]]; then
        cat "$out" >&2
        die "$name: $failed failed, $errored errored, $done2xx of $n answered 2xx"
    fi
    echo "$rps"
}

declare -A RESULTS
PUSHY_VALID_REQUESTS=${BENCH_PUSHY_VALID_REQUESTS:-$((REQUESTS / 200 > 500 ? REQUESTS / 200 : 500))}
NAMES=(apnsim-layer apnsim-apns apnsim-t1 apnsim-t2 h2o nghttpd pushy-accept pushy-valid)
[[ -n $BASELINE ]] && NAMES+=(apnsim-base)
echo "h2load -n $REQUESTS -c $CLIENTS -m $STREAMS, POST $BODY_LEN-byte body, TLS, $(nproc) cores, $ROUNDS round(s)"
if [[ $PIN == 1 ]]; then
    echo "pinned: servers on core 0 with one worker thread, h2load on core 1 (apnsim-t1/t2 unpinned)"
else
    echo "unpinned: servers and h2load share the cores"
fi
echo "pushy-valid: -n $PUSHY_VALID_REQUESTS; $(date -u '+%Y-%m-%d %H:%M UTC'); load:$(uptime | sed 's/.*load average://')"
for ((r = 1; r <= ROUNDS; r++)); do
    for name in "${NAMES[@]}"; do
        case $name in
        apnsim-layer) rps=$(run "$name" "$LAYER_PORT") ;;
        apnsim-apns) rps=$(run "$name" "$APNS_PORT" -H "authorization: bearer $JWT") ;;
        apnsim-base) rps=$(run "$name" "$BASE_PORT" -H "authorization: bearer $JWT") ;;
        apnsim-t1) rps=$(run "$name" "$PORT_t1" -H "authorization: bearer $JWT") ;;
        apnsim-t2) rps=$(run "$name" "$PORT_t2" -H "authorization: bearer $JWT") ;;
        pushy-accept) rps=$(run "$name" "$PORT_pushy_accept" -H "authorization: bearer $JWT") ;;
        pushy-valid) rps=$(N=$PUSHY_VALID_REQUESTS run "$name" "$PORT_pushy_valid" -H "authorization: bearer $JWT") ;;
        h2o) rps=$(run "$name" "$H2O_PORT") ;;
        nghttpd) rps=$(run "$name" "$NGHTTPD_PORT") ;;
        esac
        RESULTS[$name]+="$rps "
        printf '  round %d %-13s %12s req/s\n' "$r" "$name" "$rps"
    done
done

# apnsim must have survived the run (its 2xx answers already prove the JWT and headers passed validation).
kill -0 "$APNSIM_PID" 2>/dev/null || die "apnsim exited during the run"

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
spread() { tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo, hi }'; }
echo
printf '%-13s %12s %20s\n' server 'req/s (median)' 'min-max'
declare -A MED
for name in "${NAMES[@]}"; do
    MED[$name]=$(echo "${RESULTS[$name]}" | median)
    printf '%-13s %12.0f %20s\n' "$name" "${MED[$name]}" "$(echo "${RESULTS[$name]}" | spread)"
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# target LINE RATIO MIN: prints the ratio with its target and whether it is met.
target() { awk -v l="$1" -v r="$2" -v t="$3" 'BEGIN { printf "%-44s %6.2fx   target >= %.2fx  %s\n", l, r, t, (r >= t ? "met" : "NOT met") }'; }
# Ratios of the medians, and paired round by round (the median of per-round ratios, and their spread).
paired() { # A B
    paste -d' ' <(echo "${RESULTS[$1]}" | tr ' ' '\n' | grep .) <(echo "${RESULTS[$2]}" | tr ' ' '\n' | grep .) |
        awk '{ printf "%.3f ", $1 / $2 }'
}
pmed() { paired "$1" "$2" | median; }
pspread() { paired "$1" "$2" | tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }'; }
echo "apnsim-layer / h2o     $(ratio "${MED[apnsim-layer]}" "${MED[h2o]}")x"
echo "apnsim-layer / nghttpd $(ratio "${MED[apnsim-layer]}" "${MED[nghttpd]}")x"
echo "apnsim-t2 / apnsim-t1  $(pmed apnsim-t2 apnsim-t1 | awk '{ printf "%.2f", $1 }')x (paired rounds $(pspread apnsim-t2 apnsim-t1)): req/s from 1 to 2 worker threads"
echo "pushy-accept / pushy-valid $(ratio "${MED[pushy-accept]}" "${MED[pushy-valid]}")x (Pushy's own cost of validating)"
echo
echo "targets (median of the paired per-round ratios; spread in brackets):"
target "apnsim-apns / h2o ($(pspread apnsim-apns h2o))" "$(pmed apnsim-apns h2o)" 1.5
target "apnsim-apns / nghttpd ($(pspread apnsim-apns nghttpd))" "$(pmed apnsim-apns nghttpd)" 0.9
target "apnsim-apns / pushy-accept ($(pspread apnsim-apns pushy-accept))" "$(pmed apnsim-apns pushy-accept)" 4
echo "apnsim-apns / pushy-valid  $(pmed apnsim-apns pushy-valid | awk '{ printf "%.1f", $1 }')x (no target)"
if [[ -n $BASELINE ]]; then
    # Paired round by round: both builds ran back to back in each round, under the same load.
    paired=$(paste -d' ' <(echo "${RESULTS[apnsim-apns]}" | tr ' ' '\n' | grep .) \
        <(echo "${RESULTS[apnsim-base]}" | tr ' ' '\n' | grep .) | awk '{ printf "%.3f ", $1 / $2 }')
    echo "apnsim-apns  / apnsim-base $(echo "$paired" | median | awk '{ printf "%.2f", $1 }')x median of paired rounds ($paired) (this build / $BASELINE)"
fi
