// The MCP Apps view in a real browser: Debian's Chromium driven by playwright-core, the view in a
// sandboxed iframe of a test host page that speaks the bridge, under the spec's default CSP. Each
// view is fed the real structuredContent of `smartcar-mcp --simulator` (over MCP stdio, with the
// UI extension declared) and is checked for what it draws, console errors, CSP violations and
// network requests; light and dark screenshots go to docs/.
//
// Run by .ci/run after `cargo build`: node tests/browser/views.mjs
// Env: SMARTCAR_MCP_BIN (default target/debug/smartcar-mcp), CHROMIUM (default /usr/bin/chromium),
// PLAYWRIGHT_CORE (default target/ci-tools/playwright/node_modules/playwright-core),
// SCREENSHOT_DIR (default docs/), or SCREENSHOTS=0 for none.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import assert from "node:assert/strict";

const root = resolve(import.meta.dirname, "../..");
const BIN = process.env.SMARTCAR_MCP_BIN || join(root, "target/debug/smartcar-mcp");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PW = process.env.PLAYWRIGHT_CORE || join(root, "target/ci-tools/playwright/node_modules/playwright-core");
const SHOTS = process.env.SCREENSHOTS !== "0";
const SHOT_DIR = process.env.SCREENSHOT_DIR || join(root, "docs");
// A file URL: a relative path (as CI passes) would otherwise be read as a package name.
const { chromium } = await import(pathToFileURL(resolve(PW, "index.mjs")).href);

const UI = "io.modelcontextprotocol/ui";
const MIME = "text/html;profile=mcp-app";
// The spec's default CSP for a view that declares no `csp` (2026-01-26, plus the draft's object-src).
const CSP = "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; media-src 'self' data:; connect-src 'none'; object-src 'none'";
const EV = "veh-ev-0001", PHEV = "veh-phev-0002", ALICE = "usr-alice-01";

// ---- an MCP client over the binary's stdio, declaring the UI extension at initialize ----
async function server(extra) {
  // Port 0: the server says on stderr where it receives webhooks. A port picked here and passed
  // in could be taken by the server's own simulator first (bind(0) may hand out a port just freed).
  const child = spawn(BIN, ["--simulator", "--audit-db", "off", "--webhook-addr", "127.0.0.1:0", ...extra],
    { stdio: ["pipe", "pipe", "pipe"], env: { PATH: process.env.PATH } });
  let buf = "", seq = 0, stderr = "";
  const waiting = new Map();
  // A server that exits fails every request waiting on it, instead of leaving the test hanging.
  child.on("exit", (code) => {
    for (const w of waiting.values()) w.fail(new Error(`the server exited (${code}): ${stderr}`));
    waiting.clear();
  });
  const webhookPort = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no webhook address within 20 s: ${stderr}`)), 20000);
    child.stderr.on("data", (d) => {
      stderr += d;
      const m = /receiving webhooks on http:\/\/127\.0\.0\.1:(\d+)\//.exec(stderr);
      if (m) { clearTimeout(timer); ok(Number(m[1])); }
    });
    child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`the server exited (${code}): ${stderr}`)); });
  });
  child.stdout.on("data", (d) => {
    buf += d;
    for (let i; (i = buf.indexOf("\n")) >= 0;) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      const m = JSON.parse(line);
      if (m.id != null && waiting.has(m.id) && !m.method) { const w = waiting.get(m.id); waiting.delete(m.id); m.error ? w.fail(new Error(JSON.stringify(m.error))) : w.ok(m.result); }
    }
  });
  const send = (m) => child.stdin.write(JSON.stringify({ jsonrpc: "2.0", ...m }) + "\n");
  const request = (method, params) => { const id = ++seq; send({ id, method, params }); return new Promise((ok, fail) => waiting.set(id, { ok, fail })); };
  const init = await request("initialize", {
    protocolVersion: "2025-11-25", clientInfo: { name: "views-test-host", version: "1" },
    capabilities: { extensions: { [UI]: { mimeTypes: [MIME] } } },
  });
  assert.ok(init.capabilities.extensions && init.capabilities.extensions[UI], "the server advertises the UI extension");
  send({ method: "notifications/initialized" });
  return { request, webhookPort, close: () => child.kill() };
}

// State Smartcar pushed by webhook, signed as the simulator signs it, recorded two hours ago.
async function push(port, vehicle, make, model, signals) {
  const at = Date.now() - 2 * 3600 * 1000;
  const body = JSON.stringify({
    eventId: `ev-${vehicle}-${at}`, eventType: "VEHICLE_STATE", vehicleId: vehicle,
    data: { user: { id: ALICE }, vehicle: { id: vehicle, make, model, year: 2023 },
      signals: signals.map(([code, value]) => ({ code, name: code, group: code.split("-")[0], body: { value }, meta: { oemUpdatedAt: at } })) },
    meta: { version: "4.0", deliveryId: "d-1", deliveredAt: at },
  });
  const sig = createHmac("sha256", "simulator-management-token").update(body).digest("hex");
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/webhooks/smartcar`, { method: "POST", body, headers: { "content-type": "application/json", "sc-signature": sig } });
      assert.equal(r.status, 200, `webhook accepted: ${await r.text()}`);
      return;
    } catch (e) { if (i > 50) throw e; await new Promise((r) => setTimeout(r, 100)); }
  }
}

// ---- the test host page: bridge, default CSP, sandboxed srcdoc iframe ----
const HOST = `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<style>body{margin:0;background:#888}iframe{border:0;display:block;width:400px;height:100px}</style></head>
<body><script>
window.__log = [];
window.start = (html, input, result, context) => {
  const f = document.createElement("iframe");
  f.setAttribute("sandbox", "allow-scripts");
  f.style.width = context.containerDimensions.width + "px";
  f.srcdoc = html;
  const to = (m) => f.contentWindow.postMessage(Object.assign({ jsonrpc: "2.0" }, m), "*");
  window.addEventListener("message", (e) => {
    if (e.source !== f.contentWindow) return;
    const m = e.data; window.__log.push(m);
    if (m.method === "ui/initialize") to({ id: m.id, result: { protocolVersion: "2026-01-26",
      hostInfo: { name: "smartcar-mcp test host", version: "1" }, hostCapabilities: { openLinks: {} }, hostContext: context } });
    else if (m.method === "ui/notifications/initialized") {
      to({ method: "ui/notifications/tool-input", params: { arguments: input } });
      to({ method: "ui/notifications/tool-result", params: result });
    } else if (m.method === "ui/notifications/size-changed") f.style.height = m.params.height + "px";
    else if (m.method === "ui/open-link") to({ id: m.id, result: {} });
    else if (m.id !== undefined) to({ id: m.id, error: { code: -32601, message: "unknown" } });
  });
  document.body.append(f);
};
</script></body></html>`;
// The harness's own probe in the view's head: CSP violations inside the view are recorded there.
const PROBE = `<script>window.__csp=[];document.addEventListener("securitypolicyviolation",e=>__csp.push(e.violatedDirective+" "+e.blockedURI))</script>`;

// A fresh profile each run: launchPersistentContext passes it as --user-data-dir.
const profile = mkdtempSync(join(tmpdir(), "views-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  viewport: { width: 420, height: 1600 },
  deviceScaleFactor: 1,
});
let blocked = [];
await browser.route("**/*", (r) => { blocked.push(r.request().url()); r.abort(); });
let failures = 0, passed = 0;

async function render(html, input, result, theme) {
  const page = await browser.newPage();
  await page.emulateMedia({ colorScheme: theme });
  const requests = [], errors = [];
  blocked = requests;
  page.on("request", (r) => { if (!r.url().startsWith("about:")) requests.push(r.url()); });
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.setContent(HOST);
  await page.evaluate(([h, i, r, c]) => window.start(h, i, r, c),
    [html.replace("<head>", "<head>" + PROBE), input, result,
     { theme, displayMode: "inline", locale: "en-US", timeZone: "UTC", containerDimensions: { width: 400, maxHeight: 2000 }, platform: "web" }]);
  const frame = await (await page.waitForSelector("iframe")).contentFrame();
  await frame.waitForFunction(() => document.getElementById("app").childElementCount > 0);
  // The host heard the size and set it: wait until the iframe's height matches the content.
  await page.waitForFunction(() => window.__log.some((m) => m.method === "ui/notifications/size-changed" && m.params.height > 50));
  await page.waitForTimeout(150);
  return { context: page, page, frame, requests, errors };
}

async function check(name, html, input, result, expect, shot) {
  for (const theme of ["light", "dark"]) {
    const r = await render(html, input, result, theme);
    try {
      // As seen (innerText, headings upper-cased by CSS), then as written (textContent).
      const text = await r.frame.evaluate(() => document.body.innerText + "\n" + document.getElementById("app").textContent);
      const log = await r.page.evaluate(() => window.__log);
      const init = log.find((m) => m.method === "ui/initialize");
      assert.ok(init && init.params.appCapabilities && init.params.protocolVersion === "2026-01-26", "ui/initialize with appCapabilities");
      assert.ok(log.some((m) => m.method === "ui/notifications/initialized"), "initialized sent");
      const sizes = log.filter((m) => m.method === "ui/notifications/size-changed").map((m) => m.params.height);
      assert.ok(sizes.length && sizes.every((h) => h > 0 && h < 2000), `size-changed heights ${sizes}`);
      assert.equal(await r.frame.evaluate(() => document.documentElement.dataset.theme), theme);
      // Before any interaction (sorting, clicking), as a host first shows it.
      if (shot && SHOTS) await (await r.page.$("iframe")).screenshot({ path: join(SHOT_DIR, `view-${shot}-${theme}.png`) });
      await expect(r.frame, text, r.page);
      const csp = await r.frame.evaluate(() => window.__csp);
      assert.deepEqual(csp, [], "no CSP violations");
      assert.deepEqual(r.errors, [], "no console errors or warnings");
      assert.deepEqual(r.requests, [], "no network requests");
      passed++;
      console.log(`ok   ${name} (${theme})`);
    } catch (e) {
      failures++;
      console.log(`FAIL ${name} (${theme}): ${e.message}`);
    } finally {
      await r.context.close();
    }
  }
}

const has = (text, ...want) => { for (const w of want) assert.ok(text.includes(w), `shows ${JSON.stringify(w)}; it shows:\n${text}`); };
const lacks = (text, ...not) => { for (const w of not) assert.ok(!text.includes(w), `does not show ${JSON.stringify(w)}`); };

try {
  // ---- exact location, with pushed state for two of the three vehicles ----
  const s = await server([]);
  await push(s.webhookPort, EV, "TESLA", "Model 3", [["tractionbattery-stateofcharge", 72], ["closure-islocked", true],
    ["charge-ischarging", false], ["charge-ischargingcableconnected", true], ["charge-activelimit", 80]]);
  await push(s.webhookPort, PHEV, "TOYOTA", "RAV4 Prime", [["tractionbattery-stateofcharge", 64], ["closure-islocked", false]]);
  const tools = (await s.request("tools/list", {})).tools;
  const uris = new Set(tools.filter((t) => t._meta && t._meta.ui).map((t) => t._meta.ui.resourceUri));
  assert.equal(uris.size, 1, "one view for every read tool");
  const uri = [...uris][0];
  assert.deepEqual(tools.filter((t) => t._meta && t._meta.ui).map((t) => t.name).sort(),
    ["get_connection", "get_signal", "get_signals", "get_vehicle", "list_connections"]);
  const read = await s.request("resources/read", { uri });
  assert.equal(read.contents[0].mimeType, MIME);
  const html = read.contents[0].text;
  console.log(`view ${uri}: ${Buffer.byteLength(html)} bytes`);
  const call = async (name, args) => { const r = await s.request("tools/call", { name, arguments: args }); assert.ok(!r.isError, `${name}: ${JSON.stringify(r.content)}`); return r; };

  const ev = { vehicle_id: EV, user_id: ALICE };
  await check("vehicle: get_signals of the BEV", html, ev, await call("get_signals", ev), async (f, t, page) => {
    has(t, "Sparky · 2023 Tesla Model 3", "72 %", "402 km", "Charge limit", "80 %", "Locked", "All 4 doors closed", "18,452.7 km",
      "Plugged in, not charging", "Fetched from Smartcar", "Recorded", "fetched now", "Open in maps", "37.7793", "heading 45°");
    lacks(t, "Unlocked", "UNAVAILABLE");
    assert.equal(await f.locator("svg[role=img]").count() >= 5, true, "gauge, doors, tires, locator, schedule");
    for (const label of await f.locator("svg[role=img]").evaluateAll((l) => l.map((e) => e.getAttribute("aria-label"))))
      assert.ok(label && label.length > 8, `every graphic has a text alternative (${label})`);
    assert.match(await f.locator("svg.ring").getAttribute("aria-label"), /Battery 72 percent, charge limit 80 percent/);
    assert.match(await f.locator("[aria-label^='Tire pressure in kPa']").getAttribute("aria-label"), /front left 290/);
    // "Open in maps" asks the host, which records the URL; nothing is navigated or fetched.
    await f.getByRole("button", { name: "Open in maps" }).click();
    await page.waitForFunction(() => window.__log.some((m) => m.method === "ui/open-link"));
    const link = (await page.evaluate(() => window.__log)).find((m) => m.method === "ui/open-link").params.url;
    assert.equal(link, "https://www.openstreetmap.org/?mlat=37.7793&mlon=-122.4193#map=16/37.7793/-122.4193");
  }, "vehicle");

  const phev = { vehicle_id: PHEV, user_id: ALICE };
  await check("vehicle: get_signals of the PHEV", html, phev, await call("get_signals", phev), async (f, t) => {
    has(t, "2022 Toyota RAV4 Prime", "64 %", "Unlocked", "Charging", "3.8 kW", "95 min to the limit", "Fuel 55 %", "520 km");
    has(t, "Not readable on this vehicle: closure-fronttrunk");
    assert.match(await f.locator("[aria-label^='Tire pressure in kPa']").getAttribute("aria-label"), /rear left 245/);
  });

  await check("vehicle: get_vehicle (no signals)", html, { vehicle_id: EV }, await call("get_vehicle", { vehicle_id: EV }), async (f, t) => {
    has(t, "2023 Tesla Model 3", "BEV", "Vehicle record", "get_signals reads its battery", "Not in this result");
    lacks(t, "72 %");
  });

  await check("fleet: list_connections with pushed state", html, {}, await call("list_connections", {}), async (f, t) => {
    assert.equal(await f.locator("tbody tr").count(), 3);
    const rows = await f.locator("tbody tr").allInnerTexts();
    has(rows[0], "Tesla Model 3", "72 %", "Locked", "2 h ago");
    has(rows[1], "Toyota RAV4 Prime", "64 %", "Unlocked");
    has(rows[2], "Ford F-150", "simulated", "—", "Nothing pushed");
    has(t, "Fleet", "3 vehicles", "(2 of 3); no vehicle was called");
    // Sorting by charge puts the vehicle with nothing pushed first, then 64 %, then 72 %.
    await f.getByRole("button", { name: "Charge" }).click();
    has((await f.locator("tbody tr").allInnerTexts())[0], "Ford");
  }, "fleet");

  const timers = { ...ev, signal_code: "charge-chargetimers" };
  await check("charging: get_signal charge-chargetimers", html, timers, await call("get_signal", timers), async (f, t) => {
    has(t, "Charging", "charge-chargetimers", "charging window", "departure", "Mon", "Sun");
    // Charge state and limit are not part of this read: they come from pushed state, and say so.
    has(await f.locator("[aria-label='Charging']").innerText(), "Plugged in, not charging", "pushed by webhook");
    has(await f.locator("[aria-label='Charge limit']").innerText(), "80 %", "Recorded 2 h ago · pushed by webhook");
    assert.equal(await f.locator("rect.win").count(), 14, "7 nightly windows from 23:00, each in two pieces across midnight");
    assert.equal(await f.locator("path.dep").count(), 5, "a departure each weekday");
    const alt = await f.locator("svg[role=img]").first().getAttribute("aria-label");
    has(alt, "from 23:00 to 05:00 at Home", "Departs Monday, Tuesday, Wednesday, Thursday, Friday at 07:30");

  }, "charging");

  const records = { ...phev, signal_code: "charge-chargerecords" };
  await check("charging: get_signal charge-chargerecords", html, records, await call("get_signal", records), async (f, t) => {
    has(t, "Charging sessions", "9.8 kWh", "2.16 USD", "Home");
    // Charge state is not part of this read, and pushed state holds none: it says so.
    has(t, "Charge state is not in this result");
    has(await f.locator("[aria-label='Charge limit']").innerText(), "Not in this result");
  });

  const soc = { ...ev, signal_code: "tractionbattery-stateofcharge" };
  await check("signal: get_signal tractionbattery-stateofcharge", html, soc, await call("get_signal", soc), async (f, t) => {
    has(t, "72 %", "Recorded");
  });

  const bad = await s.request("tools/call", { name: "get_signal", arguments: { ...ev, signal_code: "tractionbattery-nosuchthing" } });
  assert.ok(bad.isError);
  await check("error result", html, {}, bad, async (f, t) => { has(t, "tractionbattery-nosuchthing"); });
  s.close();

  // ---- coarse: a ~1 km square, no point, a city-zoom link ----
  const c = await server(["--location", "coarse"]);
  await check("vehicle: --location coarse", html, ev, await (async () => (await c.request("tools/call", { name: "get_signals", arguments: ev })))(), async (f, t, page) => {
    has(t, "Location (coarse, about 1 km)", "Somewhere in the 1 km square around 37.78° N, 122.42° W", "≈1 km");
    lacks(t, "37.7793", "heading");
    assert.equal(await f.locator("circle.pin").count(), 0, "no point drawn");
    await f.getByRole("button", { name: "Open in maps" }).click();
    await page.waitForFunction(() => window.__log.some((m) => m.method === "ui/open-link"));
    const link = (await page.evaluate(() => window.__log)).find((m) => m.method === "ui/open-link").params.url;
    assert.equal(link, "https://www.openstreetmap.org/#map=14/37.78/-122.42");
  }, "vehicle-coarse");
  c.close();

  // ---- off: no locator at all, and no coordinate in what the view got ----
  const o = await server(["--location", "off"]);
  const offResult = await o.request("tools/call", { name: "get_signals", arguments: ev });
  assert.ok(!/"l(at|ong)itude":\s*-?\d/.test(JSON.stringify(offResult)), "no coordinate reaches the view");
  await check("vehicle: --location off", html, ev, offResult, async (f, t) => {
    has(t, "72 %", "Locked");
    lacks(t, "Location", "Open in maps", "37.7", "122.4");
  });
  o.close();

  // ---- the harness itself: a view breaking the CSP is caught ----
  {
    const r = await render(html, ev, offResult, "light");
    await r.frame.evaluate(() => { const i = document.createElement("img"); i.src = "https://tile.openstreetmap.org/1/1/1.png"; document.body.append(i); });
    await r.frame.waitForFunction(() => window.__csp.length > 0);
    assert.match((await r.frame.evaluate(() => window.__csp))[0], /^img-src/);
    await r.context.close();
    console.log("ok   harness: a tile <img> is refused by the default CSP and reported");
    passed++;
  }
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
