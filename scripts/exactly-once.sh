#!/usr/bin/env bash
# Exactly-once under sustained random faults (issue 12): a real `apnsim serve` with a scenario that
# silently drops 1% of legacy notifications at random and streams every journal event to
# `--journal-file`; the reference provider (`apnsim send --protocol legacy`) sends N
# notifications with distinct identifiers, in plans of CHUNK (default 100,000). The journal file
# (nothing lost to the journal's bound) and the provider's report are then checked:
#   lost               accepted by nobody               must be 0
#   false failures     reported anything but `sent`     must be 0
#   duplicates         accepted more than once; each must be forced by the protocol: its first
#                      acceptance was on a connection that ended in a silent drop, where the
#                      provider cannot know what the server read (PROTOCOL.md 1.7)
# Prints the figures and exits non-zero when one is broken.
# Usage: scripts/exactly-once.sh [N] (default 1000000). QUIET_MS is the silence the provider takes
# as acceptance (default twice the answer delay plus 100 ms: it must exceed the server's answer
# delay, or the provider counts as delivered what the server is about to drop, which is exactly
# the loss apnsim reproduces, PROTOCOL.md 1.7); SEED (default 12) seeds the scenario's random drops;
# ANSWER_DELAY_MS (default 200, the server's own default) is `legacy_answer_delay_ms`: each drop
# then costs the provider at least that long, so a million notifications at 1% drops take over
# half an hour at 200 and a few minutes at 0.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
chunk="${CHUNK:-100000}"
seed="${SEED:-12}"
answer_delay_ms="${ANSWER_DELAY_MS:-200}"
quiet_ms="${QUIET_MS:-$((2 * answer_delay_ms + 100))}"

cargo build --release --quiet
bin="$PWD/target/release/apnsim"
work="$(mktemp -d "${TMPDIR:-/tmp}/apnsim-exactly-once.XXXXXX")"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/scenario.toml" <<EOF
seed = $seed

[settings]
legacy_answer_delay_ms = $answer_delay_ms

[[rules]]
when = { protocol = "legacy", probability = 0.01 }
then = { action = "drop" }
EOF

"$bin" serve --certs "$work/certs" --ready-file "$work/ready.json" \
    --journal-file "$work/journal.jsonl" --scenario "$work/scenario.toml" \
    --legacy-port 0 --feedback-port 0 --sandbox-legacy-port off --sandbox-feedback-port off \
    --http2-port off --sandbox-http2-port off --control-port 0 \
    --manage-broadcast-port off --sandbox-manage-broadcast-port off \
    --log-format json >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
    [ -s "$work/ready.json" ] && break
    sleep 0.1
done
[ -s "$work/ready.json" ] || { echo "apnsim serve did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
read -r legacy_port feedback_port < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(r["legacy"].rsplit(":", 1)[1], r["feedback"].rsplit(":", 1)[1])' "$work/ready.json")

start=$(date +%s)
first=1
while [ "$first" -le "$n" ]; do
    last=$((first + chunk - 1))
    [ "$last" -gt "$n" ] && last=$n
    python3 - "$first" "$last" >"$work/plan.json" <<'EOF'
import json, sys
first, last = int(sys.argv[1]), int(sys.argv[2])
notes = [
    {"id": i, "token": "%064x" % i, "payload": {"aps": {"alert": "n%d" % i}}, "priority": 10}
    for i in range(first, last + 1)
]
json.dump({"notifications": notes}, sys.stdout)
EOF
    "$bin" send --certs "$work/certs" --protocol legacy --port "$legacy_port" \
        --feedback-port "$feedback_port" --quiet-ms "$quiet_ms" --plan "$work/plan.json" \
        >>"$work/outcomes.jsonl" 2>>"$work/send.log"
    echo "exactly-once: sent $last / $n ($(($(date +%s) - start)) s)" >&2
    first=$((last + 1))
done
elapsed=$(($(date +%s) - start))

# Let the journal file catch up, then stop the server (the writer flushes on shutdown).
kill -TERM "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""

python3 - "$n" "$elapsed" "$work/journal.jsonl" "$work/outcomes.jsonl" <<'EOF'
import collections, json, sys
n, elapsed, journal, outcomes = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
accepted = collections.Counter()
first_conn = {}
dropped_conns = set()
drops = events = 0
last_seq = 0
gaps = 0
for line in open(journal):
    e = json.loads(line)
    events += 1
    if e["seq"] != last_seq + 1:
        gaps += 1
    last_seq = e["seq"]
    kind = e["kind"]
    if kind == "dropped":
        drops += 1
        dropped_conns.add(e["connection"])
    elif kind == "accepted":
        ident = e["notification"]["identifier"]
        ident = int(ident, 16) if isinstance(ident, str) else int(ident)
        accepted[ident] += 1
        first_conn.setdefault(ident, e["connection"])
results = collections.Counter()
not_sent = []
reported = set()
for line in open(outcomes):
    o = json.loads(line)
    if "id" not in o or "result" not in o:
        continue
    reported.add(o["id"])
    results[o["result"]] += 1
    if o["result"] != "sent":
        not_sent.append(o)
lost = [i for i in range(1, n + 1) if accepted[i] == 0]
dups = [i for i in range(1, n + 1) if accepted[i] > 1]
unforced = [i for i in dups if first_conn[i] not in dropped_conns]
missing_reports = n - len(reported & set(range(1, n + 1)))
print(f"notifications        {n}")
print(f"elapsed              {elapsed} s ({n / max(elapsed, 1):.0f}/s)")
print(f"journal events       {events} (sequence gaps: {gaps})")
print(f"silent drops         {drops}")
print(f"provider results     {dict(results)}")
print(f"lost                 {len(lost)} {lost[:10]}")
print(f"false failures       {len(not_sent)} {not_sent[:5]}")
print(f"unreported           {missing_reports}")
print(f"duplicates           {len(dups)} ({sum(accepted[i] - 1 for i in dups)} extra copies), "
      f"not forced by a silent drop: {len(unforced)} {unforced[:10]}")
ok = not lost and not not_sent and not unforced and not missing_reports and gaps == 0
print("exactly-once:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
EOF
