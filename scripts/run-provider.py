#!/usr/bin/env python3
"""Runs one provider driver (fixtures/providers/<name>) once against a running `apnsim serve`,
the way fixtures/providers/README.md describes the contract: fills the placeholders of
provider.toml's command, sets the APNSIM_* variables, runs it with a timeout, parses its
stdout. A small stand-in for the conformance runner, used by scripts/check-providers.sh and
for trying a provider by hand.

usage: run-provider.py NAME --protocol legacy|http2 --auth certificate|token
         --environment production|sandbox --ready READY.json --certs DIR --plan PLAN.json
         [--timeout 120] [--expect-accepted]
Prints one JSON object: {"provider", "exit", "results", "feedback", "done", "accepted_tokens",
"connections" (what apnsim saw: SNI, ALPN, TLS version), "ok"}.
"""
import argparse
import json
import os
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPLE_HOSTS = {
    ("legacy", "production"): "gateway.push.apple.com",
    ("legacy", "sandbox"): "gateway.sandbox.push.apple.com",
    ("http2", "production"): "api.push.apple.com",
    ("http2", "sandbox"): "api.sandbox.push.apple.com",
}


def control(ready, path):
    with urllib.request.urlopen("http://%s%s" % (ready["control"], path), timeout=10) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--protocol", required=True, choices=["legacy", "http2"])
    ap.add_argument("--auth", required=True, choices=["certificate", "token"])
    ap.add_argument("--environment", default="production", choices=["production", "sandbox"])
    ap.add_argument("--ready", required=True)
    ap.add_argument("--certs", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--expect-accepted", action="store_true",
                    help="ok only if exactly the plan's notifications were accepted")
    a = ap.parse_args()

    folder = os.path.join(ROOT, "fixtures", "providers", a.name)
    with open(os.path.join(folder, "provider.toml"), "rb") as f:
        conf = tomllib.load(f)
    build = os.path.join(ROOT, "target", "providers", a.name)
    fill = {"{venv}": os.path.join(build, "venv"),
            "{node_modules}": os.path.join(build, "node_modules"),
            "{build}": build}
    command = []
    for part in conf["command"]:
        for k, v in fill.items():
            part = part.replace(k, v)
        command.append(part)

    with open(a.ready) as f:
        ready = json.load(f)
    certs = os.path.abspath(a.certs)
    with open(os.path.join(certs, "manifest.json")) as f:
        manifest = json.load(f)
    prod = a.environment == "production"
    if a.protocol == "legacy":
        port = ready["legacy" if prod else "sandbox_legacy"]
        fb = ready["feedback" if prod else "sandbox_feedback"]
    else:
        port = ready["http2" if prod else "sandbox_http2"]
        fb = None
    ident = "provider-production" if prod else "provider-sandbox"
    env = dict(os.environ)
    env.update({
        "APNSIM_PROTOCOL": a.protocol,
        "APNSIM_AUTH": a.auth,
        "APNSIM_ENVIRONMENT": a.environment,
        "APNSIM_HOST": port.rsplit(":", 1)[0],
        "APNSIM_PORT": port.rsplit(":", 1)[1],
        "APNSIM_APPLE_HOST": APPLE_HOSTS[(a.protocol, a.environment)],
        "APNSIM_CA": os.path.join(certs, "ca.pem"),
        "APNSIM_CERT": os.path.join(certs, ident + ".pem"),
        "APNSIM_KEY": os.path.join(certs, ident + ".key"),
        "APNSIM_CERT_COMBINED": os.path.join(certs, ident + "-combined.pem"),
        "APNSIM_P12": os.path.join(certs, ident + ".p12"),
        "APNSIM_P12_PASSWORD": manifest.get("p12_password", "apnsim"),
        "APNSIM_TOKEN_KEY": os.path.join(certs, manifest["token_key"]),
        "APNSIM_KEY_ID": manifest["key_id"],
        "APNSIM_TEAM_ID": manifest["team_id"],
        "APNSIM_TOPIC": manifest["topic"],
        "APNSIM_PLAN": os.path.abspath(a.plan),
    })
    if fb:
        env["APNSIM_FEEDBACK_PORT"] = fb.rsplit(":", 1)[1]

    since = control(ready, "/journal?limit=1")["last_seq"]
    try:
        proc = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                              timeout=a.timeout)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as ex:
        code = "timeout"
        out = ex.stdout.decode() if isinstance(ex.stdout, bytes) else (ex.stdout or "")
        err = ex.stderr.decode() if isinstance(ex.stderr, bytes) else (ex.stderr or "")
    results, feedback, done, garbage = [], None, False, []
    for line in out.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            garbage.append(line)
            continue
        if "id" in obj:
            results.append(obj)
        elif "feedback" in obj:
            feedback = obj["feedback"]
        elif obj.get("done"):
            done = True
    with open(a.plan) as f:
        plan = json.load(f)
    want = [n["token"] for n in plan["notifications"]]
    try:  # the server may journal the last frames just after the driver exits
        control(ready, "/journal/wait?kind=accepted&since=%d&n=%d&timeout_ms=2000"
                % (since, len(want)))
    except urllib.error.HTTPError:
        pass
    accepted = control(ready, "/journal?kind=accepted&since=%d" % since)["events"]
    opened = control(ready, "/journal?kind=connection-opened&since=%d" % since)["events"]
    connections = []
    for e in opened:
        d = e.get("detail") or {}
        connections.append({k: v for k, v in (("protocol", e.get("protocol")),
                                              ("environment", e.get("environment")),
                                              ("sni", d.get("sni")), ("alpn", d.get("alpn")),
                                              ("tls", d.get("tls_version"))) if v is not None})
    report = {"provider": a.name, "protocol": a.protocol, "auth": a.auth,
              "environment": a.environment, "exit": code, "done": done,
              "results": results, "feedback": feedback,
              "accepted_tokens": [e["notification"]["token"] for e in accepted],
              "connections": connections}
    if garbage:
        report["stdout_garbage"] = garbage[:5]
    ok = True
    if a.expect_accepted:
        got_sent = [r for r in results if r.get("result") == "sent"]
        ok = (code == 0 and done and sorted(report["accepted_tokens"]) == sorted(want)
              and len(got_sent) == len(want))
    report["ok"] = ok
    if not ok:
        report["stderr_tail"] = err.splitlines()[-15:]
    else:
        report["stderr_lines"] = len(err.splitlines())
    print(json.dumps(report))
    if os.environ.get("RUN_PROVIDER_STDERR"):
        sys.stderr.write(err)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
