// apnsim inspector: plain JavaScript over the control API (no framework, no build step).
// Live events arrive on GET /events (read with fetch so the bearer token can be sent), are
// queued and rendered once per animation frame; the page keeps at most MAX_EVENTS and draws
// at most MAX_ROWS rows, so thousands of events per second do not freeze it.
"use strict";
const MAX_EVENTS = 5000;
const MAX_ROWS = 300;
const SLICE = 500;        // events parsed between two yields to the page
const KINDS = ["accepted", "rejected", "discarded", "dropped", "connection-opened", "connection-closed",
  "connection-refused", "feedback-served", "observation", "stored", "replaced", "expired", "delivered"];
const VERDICTS = ["accepted", "rejected", "discarded", "dropped"];

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k instanceof Node ? k : String(k));
  return e;
};

// ---- control API access (the token lives in this tab's sessionStorage only) ----
let token = sessionStorage.getItem("apnsim-token") || "";
let tokenWaiters = [];
function askToken() {
  $("token-dialog").hidden = false;
  $("token-input").focus();
  return new Promise((resolve) => tokenWaiters.push(resolve));
}
$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token-input").value.trim();
  sessionStorage.setItem("apnsim-token", token);
  $("token-dialog").hidden = true;
  tokenWaiters.splice(0).forEach((r) => r());
});
function headers(type) {
  const h = {};
  if (token) h["Authorization"] = "Bearer " + token;
  if (type) h["Content-Type"] = type;
  return h;
}
async function api(method, path, body, type) {
  for (;;) {
    const init = { method, headers: headers(body === undefined ? null : (type || "application/json")) };
    if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
    const r = await fetch(path, init);
    if (r.status === 401) { await askToken(); continue; }
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = { error: text }; }
    return { status: r.status, ok: r.ok, json };
  }
}

// ---- tabs ----
const loaders = {};
document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
function show(view) {
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("on", b.dataset.view === view));
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("on", v.id === "view-" + view));
  location.hash = view;
  if (loaders[view]) loaders[view]();
}

// ---- journal ----
let events = [];          // newest last, capped at MAX_EVENTS
let pending = [];         // arrived, not yet drawn
let paused = false;
let frame = 0;
let lastSeq = 0;
const counts = {};
KINDS.forEach((k) => $("f-kind").append(el("option", {}, k)));
const filterIds = ["f-kind", "f-protocol", "f-environment", "f-lint", "f-token", "f-topic", "f-connection", "f-rule", "f-text"];
filterIds.forEach((id) => $(id).addEventListener("input", () => redraw()));

function tokenOf(e) { return e.notification ? e.notification.token : ""; }
function ruleOf(e) { return e.detail && e.detail.rule != null ? JSON.stringify(e.detail.rule) : ""; }
function matches(e) {
  const f = (id) => $(id).value.trim();
  if (f("f-kind") && e.kind !== f("f-kind")) return false;
  if (f("f-protocol") && e.protocol !== f("f-protocol")) return false;
  if (f("f-environment") && e.environment !== f("f-environment")) return false;
  if (f("f-lint") && !(e.lint && e.lint.level === f("f-lint"))) return false;
  if (f("f-token") && !tokenOf(e).toLowerCase().includes(f("f-token").toLowerCase())) return false;
  if (f("f-topic") && !((e.notification && e.notification.topic) || "").includes(f("f-topic"))) return false;
  if (f("f-connection") && String(e.connection) !== f("f-connection")) return false;
  if (f("f-rule") && !ruleOf(e).includes(f("f-rule"))) return false;
  if (f("f-text") && !JSON.stringify(e).toLowerCase().includes(f("f-text").toLowerCase())) return false;
  return true;
}
function take(batch) {
  for (const e of batch) {
    counts[e.kind] = (counts[e.kind] || 0) + 1;
    if (e.lint && e.lint.level === "warn") counts["lint-warn"] = (counts["lint-warn"] || 0) + 1;
    if (e.seq > lastSeq) lastSeq = e.seq;
  }
  // Only the newest MAX_EVENTS can be kept: never copy more than that.
  for (const e of batch.length > MAX_EVENTS ? batch.slice(-MAX_EVENTS) : batch) events.push(e);
  if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
}
function schedule() { if (!frame) frame = requestAnimationFrame(flush); }
function flush() {
  frame = 0;
  if (paused || pending.length === 0) return;
  take(pending.splice(0));
  redraw();
}
function summary(e) {
  const n = e.notification;
  if (n) return (n.topic || "") + " → " + n.token.slice(0, 12) + "…" + (e.reason ? "  " + e.reason : "");
  if (e.detail) return JSON.stringify(e.detail).slice(0, 140);
  return e.reason || "";
}
function row(e) {
  const badge = e.lint ? el("span", { class: "lint " + e.lint.level }, "lint " + e.lint.level) : null;
  const r = el("div", { class: "row k-" + e.kind, "data-seq": e.seq, onclick: () => openEvent(e) },
    el("span", { class: "seq" }, "#" + e.seq),
    el("span", { class: "time" }, new Date(e.time_ms).toISOString().slice(11, 23)),
    el("span", { class: "kind" }, e.kind),
    el("span", { class: "proto" }, e.protocol + "/" + e.environment + " c" + e.connection),
    badge,
    el("span", { class: "sum" }, summary(e)));
  return r;
}
function redraw() {
  const list = $("list");
  const rows = [];
  for (let i = events.length - 1; i >= 0 && rows.length < MAX_ROWS; i--) {
    if (matches(events[i])) rows.push(row(events[i]));
  }
  list.replaceChildren(...rows);
  const c = $("counts");
  c.replaceChildren(...VERDICTS.concat(["lint-warn"]).map((k) =>
    el("span", { class: "count k-" + k }, k + " " + (counts[k] || 0))),
  el("span", { class: "muted" }, " holding " + events.length + " events (newest " + MAX_EVENTS + "), showing " + rows.length));
}
$("pause").addEventListener("click", () => {
  paused = !paused;
  $("pause").textContent = paused ? "Resume" : "Pause";
  $("status").textContent = paused ? "paused (" + pending.length + " waiting)" : "live";
  if (!paused) schedule();
});
$("clear-journal").addEventListener("click", async () => {
  const r = await api("DELETE", "/journal");
  if (r.ok) { events = []; pending = []; Object.keys(counts).forEach((k) => delete counts[k]); redraw(); }
});

async function follow() {
  const first = await api("GET", "/journal?limit=1000");
  if (first.ok) { take(first.json.events); lastSeq = Math.max(lastSeq, first.json.last_seq); redraw(); }
  for (;;) {
    try {
      const r = await fetch("/events?since=" + lastSeq, { headers: headers() });
      if (r.status === 401) { await askToken(); continue; }
      $("status").textContent = "live";
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        // One pass over the chunk (no re-slicing per event), yielding to the page every
        // SLICE events so a burst never holds the main thread.
        let start = 0, cut, parsed = 0;
        while ((cut = buf.indexOf("\n\n", start)) >= 0) {
          const block = buf.slice(start, cut);
          start = cut + 2;
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          if (data) pending.push(JSON.parse(data));
          if (++parsed % SLICE === 0) { schedule(); await new Promise((r) => setTimeout(r, 0)); }
        }
        buf = buf.slice(start);
        if (paused) $("status").textContent = "paused (" + pending.length + " waiting)";
        schedule();
      }
    } catch (err) { console.warn("event stream broke, reconnecting:", String(err)); }
    $("status").textContent = "reconnecting…";
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---- one notification ----
function kv(obj) {
  const t = el("table", { class: "kv" });
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null) continue;
    t.append(el("tr", {}, el("th", {}, k), el("td", {}, typeof v === "object" ? JSON.stringify(v) : String(v))));
  }
  return t;
}
function pretty(payload) {
  try { return JSON.stringify(JSON.parse(payload), null, 2); } catch (_) { return payload; }
}
function shellQuote(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }
function curlFor(e) {
  const n = e.notification;
  if (!n || e.protocol !== "http2") return null;
  const lines = ["curl --http2 -k --cert client.pem \\",
    "  -H " + shellQuote("apns-topic: " + (n.topic || "")) + " \\"];
  if (n.push_type) lines.push("  -H " + shellQuote("apns-push-type: " + n.push_type) + " \\");
  if (n.priority != null) lines.push("  -H " + shellQuote("apns-priority: " + n.priority) + " \\");
  if (n.expiry != null) lines.push("  -H " + shellQuote("apns-expiration: " + n.expiry) + " \\");
  if (n.collapse_id) lines.push("  -H " + shellQuote("apns-collapse-id: " + n.collapse_id) + " \\");
  lines.push("  --data-binary " + shellQuote(n.payload != null ? n.payload : "") + " \\");
  lines.push("  https://localhost:2197/3/device/" + n.token);
  return lines.join("\n");
}
async function openEvent(e) {
  document.querySelectorAll("#list .row.sel").forEach((r) => r.classList.remove("sel"));
  const sel = document.querySelector('#list .row[data-seq="' + e.seq + '"]');
  if (sel) sel.classList.add("sel");
  const d = $("detail");
  const parts = [el("h3", {}, "#" + e.seq + " " + e.kind)];
  parts.push(kv({ verdict: e.kind, reason: e.reason, status: e.status, time: new Date(e.time_ms).toISOString(),
    protocol: e.protocol, environment: e.environment }));
  parts.push(el("p", {}, "connection ", el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); show("connections"); openConnection(e.connection); } }, "c" + e.connection + " timeline")));
  if (e.detail && e.detail.rule != null) parts.push(el("h4", {}, "Rule that fired"), el("pre", { class: "json" }, JSON.stringify(e.detail.rule, null, 2)));
  const n = e.notification;
  if (n) {
    const { payload, payload_base64, ...fields } = n;
    parts.push(el("h4", {}, e.protocol === "legacy" ? "Frame fields" : "Headers"), kv(fields));
    const shown = payload != null ? pretty(payload) : "(not UTF-8; base64) " + payload_base64;
    parts.push(el("h4", {}, "Payload"), el("pre", { class: "json payload" }, shown));
  }
  if (e.lint) {
    parts.push(el("h4", {}, "Payload lint: ", el("span", { class: "lint " + e.lint.level }, e.lint.level)));
    const ul = el("ul", { class: "findings" });
    for (const f of e.lint.findings) ul.append(el("li", {}, el("code", {}, f.rule), " ", f.key ? el("code", {}, f.key) : null, " — " + f.message + " ", el("a", { href: f.doc, target: "_blank", rel: "noopener" }, "Apple doc")));
    if (!e.lint.findings.length) ul.append(el("li", { class: "muted" }, "the device would show this as sent"));
    parts.push(ul);
  }
  if (e.detail && !(e.detail.rule != null && Object.keys(e.detail).length === 1)) parts.push(el("h4", {}, "Detail"), el("pre", { class: "json" }, JSON.stringify(e.detail, null, 2)));
  const curl = curlFor(e);
  if (curl) {
    const pre = el("pre", { class: "json curl" }, curl);
    parts.push(el("h4", {}, "Re-send with curl ", el("button", { onclick: () => navigator.clipboard && navigator.clipboard.writeText(curl) }, "Copy")), pre);
  }
  d.replaceChildren(...parts);
  if (n) {
    const r = await api("GET", "/devices/" + n.token + "/inbox");
    if (r.ok) d.append(el("h4", {}, "Device now"), deviceCard(r.json, true));
  }
}

// ---- connections ----
loaders.connections = async () => {
  const r = await api("GET", "/connections");
  const list = $("conn-list");
  list.replaceChildren();
  const seen = new Set();
  if (r.ok) for (const c of r.json.http2) {
    seen.add(c.id);
    list.append(el("div", { class: "row", onclick: () => openConnection(c.id) },
      el("span", { class: "seq" }, "c" + c.id), el("span", { class: "kind" }, "http2 open"), el("span", {}, c.environment + " " + JSON.stringify(c.auth))));
  }
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.kind === "connection-opened" && !seen.has(e.connection)) {
      seen.add(e.connection);
      list.append(el("div", { class: "row", onclick: () => openConnection(e.connection) },
        el("span", { class: "seq" }, "c" + e.connection), el("span", { class: "kind" }, e.protocol), el("span", {}, e.environment + " " + ((e.detail && e.detail.peer) || ""))));
    }
  }
};
$("c-refresh").addEventListener("click", () => loaders.connections());
$("c-open").addEventListener("click", () => openConnection(Number($("c-id").value)));
async function openConnection(id) {
  $("c-id").value = id;
  const t = $("timeline");
  const [j, live] = await Promise.all([api("GET", "/journal?connection=" + id + "&limit=1000"), api("GET", "/connections")]);
  const parts = [el("h3", {}, "Connection c" + id)];
  const opened = j.ok ? j.json.events.find((e) => e.kind === "connection-opened") : null;
  if (opened) parts.push(el("h4", {}, "Handshake"), kv({ protocol: opened.protocol, environment: opened.environment, ...opened.detail }));
  const info = live.ok ? live.json.http2.find((c) => c.id === id) : null;
  if (info) parts.push(el("h4", {}, "Live observations"), kv({ auth: info.auth, ...info.observations }));
  const ol = el("ol", { class: "timeline" });
  for (const e of (j.ok ? j.json.events : [])) {
    const what = e.notification ? (e.notification.apns_id || e.notification.identifier || "") + " " + (e.reason || "") : JSON.stringify(e.detail || e.reason || "");
    ol.append(el("li", { class: "k-" + e.kind, onclick: () => { show("journal"); openEvent(e); } },
      el("span", { class: "seq" }, "#" + e.seq), " ", el("span", { class: "kind" }, e.kind), " ", what.slice(0, 200)));
  }
  parts.push(el("h4", {}, "Timeline"), ol);
  t.replaceChildren(...parts);
}

// ---- devices: each inbox as a lock screen ----
function banner(item, stored) {
  const d = item.display || {};
  const n = item.notification;
  const b = el("div", { class: "banner" + (d.shown ? "" : " hidden-note") + (d.interruption_level ? " lvl-" + d.interruption_level : "") },
    el("div", { class: "app" }, el("span", { class: "icon" }, (n.topic || "?").split(".").pop().slice(0, 1).toUpperCase()),
      el("span", {}, n.topic || "(no topic)"), d.badge != null ? el("span", { class: "badge" }, d.badge) : null,
      el("span", { class: "when" }, stored ? "stored" : new Date(item.delivered_at_ms).toISOString().slice(11, 19))));
  if (d.title) b.append(el("div", { class: "title" }, d.title));
  if (d.subtitle) b.append(el("div", { class: "subtitle" }, d.subtitle));
  if (d.body) b.append(el("div", { class: "body" }, d.body));
  const meta = [];
  if (d.sound) meta.push("🔔 " + d.sound);
  if (d.thread) meta.push("thread " + d.thread);
  if (d.interruption_level) meta.push(d.interruption_level);
  if (n.collapse_id) meta.push("collapse " + n.collapse_id);
  if (meta.length) b.append(el("div", { class: "meta" }, meta.join(" · ")));
  if (d.content_state) b.append(el("pre", { class: "json" }, "content-state " + JSON.stringify(d.content_state)));
  if (!d.shown) b.append(el("div", { class: "why" }, "not displayed: " + (d.reason || "")));
  return b;
}
function deviceCard(view, compact) {
  const screen = el("div", { class: "lock" }, el("div", { class: "clock" }, new Date().toTimeString().slice(0, 5)));
  const inbox = view.inbox.slice().reverse();
  for (const item of inbox) screen.append(banner(item, false));
  if (!inbox.length) screen.append(el("div", { class: "empty" }, "No notifications"));
  const card = el("div", { class: "device", "data-token": view.token },
    el("div", { class: "dev-head" }, el("code", {}, view.token.slice(0, 16) + "…"),
      el("span", { class: view.online ? "online" : "offline" }, view.online ? "online" : "offline"),
      compact ? null : el("button", { class: "toggle", onclick: async () => {
        await api("POST", "/devices/" + view.token + (view.online ? "/offline" : "/online"));
        loaders.devices();
      } }, view.online ? "Go offline" : "Go online")),
    screen);
  if (view.stored.length) {
    const st = el("div", { class: "stored" }, el("h4", {}, "Stored while offline"));
    for (const s of view.stored) st.append(banner(s, true));
    card.append(st);
  }
  if (view.channels && view.channels.length) {
    card.append(el("div", { class: "channels" }, el("h4", {}, "Broadcast channels"),
      ...view.channels.map((c) => el("div", { class: "chan" }, el("code", {}, c.id), " " + c.bundle_id + " (" + c.environment + ")"))));
  }
  return card;
}
loaders.devices = async () => {
  const r = await api("GET", "/tokens");
  const box = $("devices");
  if (!r.ok) { box.replaceChildren(el("p", {}, JSON.stringify(r.json))); return; }
  // Channel subscriptions (GET /channels lists each channel's subscribers).
  const ch = await api("GET", "/channels");
  const byToken = {};
  if (ch.ok) for (const c of ch.json.channels) for (const t of c.subscribers) (byToken[t] = byToken[t] || []).push(c);
  const cards = [];
  for (const t of r.json.tokens) {
    const v = await api("GET", "/devices/" + t.token + "/inbox");
    if (v.ok) cards.push(deviceCard({ ...v.json, channels: byToken[v.json.token] || [] }, false));
  }
  box.replaceChildren(...(cards.length ? cards : [el("p", { class: "muted" }, "No registered tokens: register one under Tokens & feedback.")]));
};
$("d-refresh").addEventListener("click", () => loaders.devices());

// ---- scenario editor ----
const text = $("scenario-text");
let checkTimer = 0;
function gutter(errLines) {
  const n = text.value.split("\n").length;
  const out = [];
  for (let i = 1; i <= n; i++) {
    out.push(errLines.has(i) ? el("span", { class: "bad" }, "▶" + i) : String(i));
    if (i < n) out.push("\n");
  }
  $("gutter").replaceChildren(...out);
}
text.addEventListener("scroll", () => { $("gutter").scrollTop = text.scrollTop; });
text.addEventListener("input", () => { gutter(new Set()); clearTimeout(checkTimer); checkTimer = setTimeout(checkScenario, 250); });
function scenarioType() { return text.value.trim().startsWith("{") ? "application/json" : "application/toml"; }
function showErrors(json) {
  const ul = $("s-errors");
  const lines = new Set();
  ul.replaceChildren(...((json && json.errors) || []).map((x) => { lines.add(x.line); return el("li", { class: "err" }, "scenario:" + x.line + ":" + x.column + ": " + x.message); }));
  gutter(lines);
}
async function checkScenario() {
  if (!text.value.trim()) { $("s-check").textContent = ""; showErrors(null); return; }
  const r = await api("POST", "/scenario/check", text.value, scenarioType());
  $("s-check").textContent = r.ok ? "valid (" + r.json.rules + " rules)" : "invalid";
  $("s-check").className = r.ok ? "ok" : "bad";
  showErrors(r.ok ? null : r.json);
}
$("s-load").addEventListener("click", async () => {
  const r = await api("PUT", "/scenario", text.value, scenarioType());
  $("s-check").textContent = r.ok ? "loaded" : "not loaded: " + (r.json && r.json.error);
  showErrors(r.ok ? null : r.json);
  loaders.scenario();
});
$("s-clear").addEventListener("click", async () => { await api("DELETE", "/scenario"); loaders.scenario(); });
loaders.scenario = async () => {
  const r = await api("GET", "/scenario");
  $("s-loaded").textContent = r.ok ? JSON.stringify(r.json, null, 2) : "none";
  if (!$("ready").childElementCount) {
    const s = await api("GET", "/ui/scenarios");
    if (s.ok) for (const [name, body] of Object.entries(s.json)) {
      $("ready").append(el("button", { onclick: () => { text.value = body; gutter(new Set()); checkScenario(); } }, name));
    }
  }
  gutter(new Set());
};

// ---- tokens and feedback ----
function formValues(form) {
  const o = {};
  for (const [k, v] of new FormData(form).entries()) if (v !== "") o[k] = v;
  return o;
}
async function report(r) {
  $("t-result").textContent = (r.ok ? "done: " : "refused: ") + JSON.stringify(r.json);
  loaders.tokens();
}
$("t-register").addEventListener("submit", async (ev) => { ev.preventDefault(); report(await api("POST", "/tokens", formValues(ev.target))); });
$("t-unregister").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const t = formValues(ev.target).token;
  const cur = await api("GET", "/tokens/" + t);
  if (!cur.ok) return report(cur);
  const clock = await api("GET", "/clock");
  report(await api("POST", "/tokens", { ...cur.json, unregistered_at: clock.json.now_ms }));
});
$("t-feedback").addEventListener("submit", async (ev) => { ev.preventDefault(); report(await api("POST", "/feedback", formValues(ev.target))); });
loaders.tokens = async () => {
  const r = await api("GET", "/tokens");
  $("t-list").textContent = JSON.stringify(r.json, null, 2);
};

// ---- start ----
redraw();
follow();
const start = (location.hash || "#journal").slice(1);
if (loaders[start] || start === "journal") show(start);
