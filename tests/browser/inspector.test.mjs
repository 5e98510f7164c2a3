// Browser tests of the inspector: Debian's Chromium (/usr/bin/chromium) driven by
// playwright-core against a live `apnsim serve`; `apnsim send` is the real provider.
// Run by scripts/browser.sh, which starts the server and sets the environment below.
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { readFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

const need = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set (run scripts/browser.sh)`); return v; };
const ready = JSON.parse(readFileSync(need("APNSIM_READY"), "utf8"));
const BIN = need("APNSIM_BIN"), CERTS = need("APNSIM_CERTS"), TOKEN = need("APNSIM_CONTROL_TOKEN"), SHOTS = need("SCREENSHOTS");
const base = `http://${ready.control}`;
const h2port = ready.http2.split(":").pop();
const legacyPort = ready.legacy.split(":").pop();
const DEVICE = "ab".repeat(32);
const OTHER = "cd".repeat(32);

// Sends one push and returns when the provider has its answer (the event is journaled by then).
function send(token, payload) {
  const out = execFileSync(BIN, ["send", "--certs", CERTS, "--host", "127.0.0.1", "--port", h2port,
    "--token", token, "--payload", JSON.stringify(payload)], { encoding: "utf8" });
  assert.match(out, /"result":"sent"/, out);
  return Date.now();
}

const steps = [];
async function step(name, fn) {
  const t = Date.now();
  try { await fn(); steps.push(`ok   ${name} (${Date.now() - t} ms)`); console.log(`ok   ${name}`); }
  catch (e) { console.log(`FAIL ${name}`); throw e; }
}

// A fresh profile each run (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "apnsim-chromium-")), {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = browser.pages()[0] || await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "warning" || m.type() === "error") console.log("     page:", m.text()); });

  await step("the page asks for the control token once and keeps it in the tab", async () => {
    await page.goto(base + "/");
    await page.locator("#token-input").waitFor({ state: "visible", timeout: 5000 });
    await page.fill("#token-input", TOKEN);
    await page.click("#token-form button");
    await page.locator("#status", { hasText: "live" }).waitFor({ timeout: 5000 });
    assert.equal(await page.evaluate(() => sessionStorage.getItem("apnsim-token")), TOKEN);
  });

  await step("tokens are registered from the page", async () => {
    await page.click('nav button[data-view="tokens"]');
    for (const t of [DEVICE, OTHER]) {
      await page.fill('#t-register input[name="token"]', t);
      await page.fill('#t-register input[name="topic"]', "com.example.app");
      await page.click("#t-register button");
      await page.locator("#t-list", { hasText: t }).waitFor({ timeout: 5000 });
    }
    await page.screenshot({ path: join(SHOTS, "tokens.png") });
  });

  let accepted;
  await step("a push from apnsim send appears in the live list within a second", async () => {
    await page.click('nav button[data-view="journal"]');
    const sent = send(DEVICE, { aps: { alert: { title: "Hello", body: "From the browser test" }, badge: "3" } });
    accepted = page.locator("#list .row.k-accepted").first();
    await accepted.waitFor({ timeout: 5000 });
    const lag = Date.now() - sent;
    assert.ok(lag < 1000, `appeared ${lag} ms after the provider got its answer`);
    assert.match(await accepted.textContent(), /lint warn/);
    await page.screenshot({ path: join(SHOTS, "journal.png") });
  });

  await step("its detail shows headers, payload, verdict, lint and a curl command", async () => {
    await accepted.click();
    const d = page.locator("#detail");
    await d.locator("text=Re-send with curl").waitFor({ timeout: 5000 });
    const text = await d.textContent();
    for (const want of ["accepted", "Headers", "com.example.app", "\"title\": \"Hello\"", "badge-type", "apns-topic: com.example.app", DEVICE]) {
      assert.ok(text.includes(want), `detail lacks ${want}`);
    }
    await d.locator(".device").waitFor({ timeout: 5000 });
    await page.screenshot({ path: join(SHOTS, "notification.png") });
  });

  await step("its connection timeline shows the handshake and the request's verdict in order", async () => {
    await page.click("#detail a:has-text('timeline')");
    const t = page.locator("#timeline");
    await t.locator("text=Handshake").waitFor({ timeout: 5000 });
    const text = await t.textContent();
    for (const want of ["tls_version", "alpn", "h2", "sni", "connection-opened", "accepted"]) {
      assert.ok(text.includes(want), `timeline lacks ${want}`);
    }
    const kinds = await t.locator("ol.timeline li .kind").allTextContents();
    assert.ok(kinds.indexOf("connection-opened") < kinds.indexOf("accepted"), kinds.join(","));
    await page.screenshot({ path: join(SHOTS, "connection.png") });
  });

  await step("a device goes offline and online from the page; its stored push shows on the lock screen", async () => {
    await page.click('nav button[data-view="devices"]');
    const card = page.locator(`.device[data-token="${OTHER}"]`);
    await card.locator("button.toggle", { hasText: "Go offline" }).click();
    await card.locator(".offline").waitFor({ timeout: 5000 });
    send(OTHER, { aps: { alert: { title: "While you were away", subtitle: "stored", body: "kept by APNs" }, sound: "default", "thread-id": "t1" } });
    send(OTHER, { aps: { alert: 42 } });
    await page.click("#d-refresh");
    await card.locator(".stored .banner").first().waitFor({ timeout: 5000 });
    await card.locator("button.toggle", { hasText: "Go online" }).click();
    await card.locator(".online").waitFor({ timeout: 5000 });
    const lock = card.locator(".lock");
    // APNs keeps the latest stored notification per app: the alert-42 one replaced the first.
    await lock.locator(".banner.hidden-note").waitFor({ timeout: 5000 });
    assert.match(await lock.textContent(), /not displayed: the alert is not a string or dictionary/);
    send(OTHER, { aps: { alert: { title: "Back online", body: "delivered now" }, badge: 7, "interruption-level": "time-sensitive" } });
    await page.click("#d-refresh");
    await lock.locator(".banner .title", { hasText: "Back online" }).waitFor({ timeout: 5000 });
    await page.screenshot({ path: join(SHOTS, "devices.png") });
  });

  await step("an invalid scenario shows its error at the right line as you type", async () => {
    await page.click('nav button[data-view="scenario"]');
    await page.fill("#scenario-text", '[[rules]]\nwhen = { nth = 1 }\nthen = { action = "explode" }\n');
    await page.locator("#s-errors li").first().waitFor({ timeout: 5000 });
    const err = await page.locator("#s-errors li").first().textContent();
    assert.match(err, /^scenario:3:\d+: /, err);
    assert.match(await page.locator("#gutter").textContent(), /▶3/);
    await page.screenshot({ path: join(SHOTS, "scenario.png") });
    await page.locator("#ready button").first().click();
    await page.locator("#s-check", { hasText: "valid" }).waitFor({ timeout: 5000 });
  });

  await step("thousands of events per second: the page keeps up and its main thread stays free", async () => {
    await page.click('nav button[data-view="journal"]');
    // Probe the page's main thread: the longest gap between 20 ms ticks while the flood lasts.
    await page.evaluate(() => {
      window.__maxGap = 0;
      let last = performance.now();
      window.__probe = setInterval(() => { const t = performance.now(); window.__maxGap = Math.max(window.__maxGap, t - last); last = t; }, 20);
      // The page's own long tasks (script and rendering), apart from the CPU the machine denies it.
      window.__longest = 0;
      new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); })
        .observe({ type: "longtask" });
    });
    const auth = { headers: { Authorization: "Bearer " + TOKEN } };
    const lastSeq = async () => (await (await fetch(base + "/journal?limit=0", auth)).json()).last_seq;
    const first = await lastSeq();
    const N = 6000;
    const plan = join(mkdtempSync(join(tmpdir(), "apnsim-flood-")), "plan.json");
    writeFileSync(plan, JSON.stringify({
      notifications: Array.from({ length: N }, (_, i) => ({ id: i + 1, token: "ef".repeat(32), payload: { aps: { alert: "flood " + i } } })),
      pace_ms: 0,
    }));
    const t0 = Date.now();
    // Legacy: the frames are pipelined in a few writes, so the flood is as dense as the server allows.
    const out = execFileSync(BIN, ["send", "--protocol", "legacy", "--certs", CERTS, "--host", "127.0.0.1",
      "--port", legacyPort, "--quiet-ms", "300", "--plan", plan],
      { encoding: "utf8", maxBuffer: 64 << 20 });
    const seconds = (Date.now() - t0) / 1000;
    assert.equal((out.match(/"result":"sent"/g) || []).length, N, "every flood notification sent");
    // The legacy protocol has no acknowledgement: the provider is done before the server has read
    // everything, so wait for the journal to hold every flood notification.
    const tj = Date.now();
    const waited = await fetch(`${base}/journal/wait?kind=accepted&since=${first}&n=${N}&timeout_ms=60000`, auth);
    assert.equal(waited.status, 200, "every flood notification journaled");
    const journaled = (Date.now() - tj) / 1000;
    const last = await lastSeq();
    // The rate the page had to absorb: events over the span of their own journal times (the
    // provider's start-up and handshake are not part of it).
    const flood = (await (await fetch(`${base}/journal?since=${first}&limit=100000`, auth)).json()).events;
    const span = (flood[flood.length - 1].time_ms - flood[0].time_ms) / 1000;
    const rate = flood.length / Math.max(span, 0.001);
    assert.ok(rate >= 1000, `the flood reached only ${Math.round(rate)} events/s`);
    // Polled from here: page.waitForFunction may evaluate a string, which the page's CSP forbids.
    const newest = () => page.evaluate(() => Number(document.querySelector("#list .row")?.dataset.seq || 0));
    const until = Date.now() + 5000;
    while ((await newest()) < last) {
      assert.ok(Date.now() < until, `the page did not show seq ${last} within 5 s of the journal`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const caughtUp = (Date.now() - t0) / 1000 - seconds - journaled;
    const [gap, longest] = await page.evaluate(() => { clearInterval(window.__probe); return [window.__maxGap, window.__longest]; });
    // Bounds that only a page doing per-event work on the main thread (drawing every event,
    // holding them all) misses; on a busy 2-core machine the browser also waits for CPU.
    assert.ok(longest < 2000, `one task of the page ran ${Math.round(longest)} ms`);
    assert.ok(gap < 3000, `the page's main thread was blocked for ${Math.round(gap)} ms`);
    assert.ok(await page.locator("#list .row").count() <= 300, "at most 300 rows drawn");
    assert.match(await page.locator("#counts").textContent(), /holding 5000 events/);
    console.log(`     ${flood.length} events in ${span.toFixed(2)} s (${Math.round(rate)}/s); the page showed the newest ${caughtUp.toFixed(2)} s after the journal held it; longest main-thread gap ${Math.round(gap)} ms, longest task ${Math.round(longest)} ms`);
    await page.screenshot({ path: join(SHOTS, "flood.png") });
  });

  await step("state-changing routes refuse cross-origin requests", async () => {
    const r = await fetch(base + "/journal", { method: "DELETE", headers: { Origin: "http://evil.example", Authorization: "Bearer " + TOKEN } });
    assert.equal(r.status, 403);
    const f = await fetch(base + "/tokens", { method: "POST", headers: { "Content-Type": "text/plain", "Sec-Fetch-Site": "same-origin", Authorization: "Bearer " + TOKEN }, body: "{}" });
    assert.equal(f.status, 415);
  });

  assert.deepEqual(errors, [], "page errors");
} finally {
  await browser.close();
}
console.log(steps.join("\n"));
