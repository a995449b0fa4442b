// Browser tests of dnsrecall's web UI, run by run.sh against a live
// `dnsrecall serve` holding tests/data/ui/fixture.cof.ndjson, with
// Debian's chromium driven by playwright-core (no browser download).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const BASE = process.env.DNSRECALL_URL;
const KEY = process.env.DNSRECALL_KEY;
const SHOTS = process.env.SCREENSHOTS;
const DOWNLOADS = process.env.DOWNLOADS;
assert.ok(BASE && KEY && SHOTS && DOWNLOADS, "run through run.sh");
fs.mkdirSync(SHOTS, { recursive: true });
fs.mkdirSync(DOWNLOADS, { recursive: true });

let browser;
let context;
let page;
const pageErrors = [];

before(async () => {
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  context = await browser.newContext({ acceptDownloads: true, bypassCSP: true, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("console", (message) => { if (message.type() === "error" && !/status of 401/.test(message.text())) pageErrors.push(`${message.text()} (${message.location().url})`); });
  // Log in once, through the form.
  await page.goto(BASE + "/");
  assert.match(page.url(), /\/ui\/login/);
  await page.fill("#key", "not-the-key");
  await page.click("button[type=submit]");
  assert.match(await page.textContent(".error"), /not accepted/);
  await page.fill("#key", KEY);
  await Promise.all([page.waitForURL(BASE + "/"), page.click("button[type=submit]")]);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "dnsrecall_session");
  assert.ok(session, "session cookie");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  assert.ok(!cookies.some((c) => c.value.includes(KEY)), "the key is not in a cookie");
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!stored.includes(KEY), "the key is not in the browser's storage");
});

after(async () => { await browser?.close(); });

async function search(text) {
  await page.fill("#q", text);
  await Promise.all([
    page.waitForURL((url) => url.searchParams.get("q") === text),
    page.press("#q", "Enter"),
  ]);
  await page.waitForSelector("#results tbody tr, #no-rows");
}

async function rowNames() {
  return page.$$eval("#results tbody tr td.name", (cells) => cells.map((c) => c.textContent.trim()));
}

async function rdataOf() {
  return page.$$eval("#results tbody tr td.rdata", (cells) => cells.map((c) => c.textContent.trim()));
}

async function noSeriousAxeViolations(label) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => await window.axe.run(document));
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  const described = serious.map((v) => `${v.id}: ${v.help}: ${v.nodes.map((n) => n.target.join(" ") + " " + (n.any[0]?.message ?? "")).join("; ")}`);
  assert.deepEqual(described, [], label);
}

test("search by name", async () => {
  await page.goto(BASE + "/");
  await search("www.example.com");
  const names = await rowNames();
  assert.equal(names.length, 3);
  assert.ok(names.every((n) => n === "www.example.com."));
  assert.match(await page.textContent("#parsed"), /rrset lookup, exact name/);
  assert.match(await page.textContent("#api-url"), /^\/dnsdb\/v2\/lookup\/rrset\/name\/www\.example\.com\?limit=/);
  assert.equal(await page.$$eval("svg#timeline .bar", (b) => b.length), 3);
  await page.screenshot({ path: path.join(SHOTS, "name-view.png") });
  await page.locator("section.timeline-box").screenshot({ path: path.join(SHOTS, "timeline.png") });
  await noSeriousAxeViolations("name view");
});

test("search by address", async () => {
  await search("192.0.2.1");
  const names = (await rowNames()).sort();
  assert.deepEqual(names, ["old.example.com.", "www.example.com."]);
});

test("search by CIDR", async () => {
  await search("192.0.2.0/24");
  const rdata = await rdataOf();
  assert.equal(rdata.length, 5);
  assert.ok(rdata.every((r) => r.startsWith("192.0.2.")), rdata.join());
});

test("search by wildcards", async () => {
  await search("*.example.com");
  assert.ok((await rowNames()).length >= 9);
  const branches = await page.$$eval("#label-tree tbody tr td:first-child", (c) => c.map((x) => x.textContent.trim()));
  assert.ok(branches.includes("www.example.com."), branches.join());
  await page.screenshot({ path: path.join(SHOTS, "wildcard-view.png") });
  await noSeriousAxeViolations("wildcard view");
  // A TXT record holding <script> is text.
  const txt = await page.$$eval("#results td.rdata", (c) => c.map((x) => x.textContent).find((t) => t.includes("script")));
  assert.equal(txt, "\"<script>alert('txt')</script>\"");
  await search("www.example.*");
  const names = await rowNames();
  assert.ok(names.includes("www.example.com.") && names.includes("www.example.net."), names.join());
});

test("pivot and back", async () => {
  await search("www.example.com");
  const link = page.locator("#results td.rdata a", { hasText: "192.0.2.2" });
  await Promise.all([page.waitForURL((u) => u.searchParams.get("q") === "192.0.2.2"), link.click()]);
  await page.waitForSelector("#results tbody tr");
  assert.deepEqual(await rowNames(), ["www.example.com."]);
  const crumbs = await page.$$eval("nav.trail li", (l) => l.map((x) => x.textContent.trim()));
  assert.deepEqual(crumbs.slice(-2), ["www.example.com", "192.0.2.2"]);
  await page.goBack();
  await page.waitForURL((u) => u.searchParams.get("q") === "www.example.com");
  await page.waitForFunction(() => document.querySelectorAll("#results tbody tr").length === 3);
  await page.goForward();
  await page.waitForURL((u) => u.searchParams.get("q") === "192.0.2.2");
});

test("the timeline brush sets the time fence and the URL", async () => {
  await page.goto(BASE + "/?q=www.example.com");
  const svg = await page.$("svg#timeline");
  const box = await svg.boundingBox();
  const t0 = Number(await svg.getAttribute("data-t0"));
  const t1 = Number(await svg.getAttribute("data-t1"));
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.3, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, y, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.7, y, { steps: 5 });
  await Promise.all([page.waitForURL((u) => u.searchParams.has("after")), page.mouse.up()]);
  const url = new URL(page.url());
  const after = Number(url.searchParams.get("after"));
  const before = Number(url.searchParams.get("before"));
  assert.ok(t0 < after && after < before && before < t1, `${t0} < ${after} < ${before} < ${t1}`);
  assert.match(await page.textContent("#fence"), /seen between/);
  assert.ok(await page.$("svg#timeline rect.fence"), "the fence is drawn");
  // Loose fence: records overlapping the window; the AAAA (days 5-6) is outside it.
  const types = await page.$$eval("#results tbody tr td:nth-child(6)", (c) => c.map((x) => x.textContent));
  assert.ok(!types.includes("AAAA"), types.join());
  assert.ok(types.length >= 1);
});

test("keyboard flow", async () => {
  await page.goto(BASE + "/ui/status");
  await page.keyboard.press("/");
  // The status page has no search box: nothing breaks. Go to the search page.
  await page.goto(BASE + "/");
  await page.evaluate(() => document.activeElement.blur());
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement.id), "q");
  await page.keyboard.type("example.com");
  await Promise.all([page.waitForURL((u) => u.searchParams.get("q") === "example.com"), page.keyboard.press("Enter")]);
  await page.waitForSelector("#results tbody tr");
  await page.evaluate(() => document.activeElement.blur());
  await page.keyboard.press("j");
  assert.equal(await page.$eval("#results tbody tr.selected", (r) => r.id), "r0");
  await page.keyboard.press("j");
  assert.equal(await page.$eval("#results tbody tr.selected", (r) => r.id), "r1");
  await page.keyboard.press("k");
  assert.equal(await page.$eval("#results tbody tr.selected", (r) => r.id), "r0");
  await page.keyboard.press("?");
  assert.equal(await page.isVisible("#help"), true);
  await page.keyboard.press("Escape");
  assert.equal(await page.isVisible("#help"), false);
  const target = await page.$eval("#results tbody tr.selected a.rdata-link", (a) => a.getAttribute("href"));
  await Promise.all([page.waitForURL((u) => u.pathname + u.search === target), page.keyboard.press("p")]);
  await page.waitForSelector("#results tbody tr, #no-rows");
});

test("dark mode follows the system and the toggle", async () => {
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: "light" });
  await page.goto(BASE + "/?q=www.example.com");
  assert.equal(await background(), "rgb(255, 255, 255)");
  await page.emulateMedia({ colorScheme: "dark" });
  assert.equal(await background(), "rgb(13, 17, 23)");
  await page.screenshot({ path: path.join(SHOTS, "name-view-dark.png") });
  await noSeriousAxeViolations("dark name view");
  // The toggle wins over the system, and is remembered.
  await page.click("#theme-toggle");
  assert.equal(await background(), "rgb(255, 255, 255)");
  await page.reload();
  assert.equal(await page.getAttribute("html", "data-theme"), "light");
  assert.equal(await background(), "rgb(255, 255, 255)");
  await page.keyboard.press("t");
  assert.equal(await background(), "rgb(13, 17, 23)");
  await page.emulateMedia({ colorScheme: "light" });
  await context.clearCookies({ name: "theme" });
});

test("CSV download holds every row of the view", async () => {
  await page.goto(BASE + "/?q=*.example.com&limit=100");
  const rows = (await rowNames()).length;
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-csv")]);
  const file = path.join(DOWNLOADS, download.suggestedFilename());
  await download.saveAs(file);
  assert.match(download.suggestedFilename(), /\.csv$/);
  const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n");
  assert.equal(lines[0], "time_first,time_last,count,rrname,rrtype,bailiwick,rdata,sensor_id");
  assert.equal(lines.length - 1, rows);
  // A page of 1 row still exports all of them.
  await page.goto(BASE + "/?q=*.example.com&limit=1");
  assert.ok(await page.$("#cut"), "cut banner");
  await page.evaluate(() => document.activeElement.blur());
  const [small] = await Promise.all([page.waitForEvent("download"), page.keyboard.press("e")]);
  const smallFile = path.join(DOWNLOADS, "small.csv");
  await small.saveAs(smallFile);
  assert.equal(fs.readFileSync(smallFile, "utf8").trimEnd().split("\n").length - 1, rows);
});

test("status page and accessibility of the other pages", async () => {
  await page.goto(BASE + "/ui/status");
  assert.match(await page.textContent("#store-records"), /^\d+$/);
  assert.match(await page.textContent("#store-observations"), /^\d+$/);
  assert.match(await page.textContent("#store-size"), /\d+(\.\d)? (B|KiB|MiB|GiB)/);
  assert.match(await page.textContent("#ingest-rate"), /observations\/s|reload to measure/);
  // The sensors of the imported records, and drops per input.
  assert.ok((await page.$$eval("#sensors td:first-child", (c) => c.map((x) => x.textContent))).includes("sensor-1"));
  const groups = await page.$$eval("section[aria-labelledby=inputs-h] h3", (h) => h.map((x) => x.textContent.trim()));
  assert.ok(groups.some((g) => /^http drops: \d+$/.test(g)), groups.join("|"));
  await page.reload();
  assert.match(await page.textContent("#ingest-rate"), /observations\/s/);
  await page.screenshot({ path: path.join(SHOTS, "status.png") });
  await noSeriousAxeViolations("status");
  await page.goto(BASE + "/");
  await noSeriousAxeViolations("search page");
  await page.goto(BASE + "/?q=192.0.2.0/24");
  await noSeriousAxeViolations("address view");
});

test("a 10,000-row view shows its first rows before the page has finished loading", async () => {
  // Record when the first row enters the document, from the first byte on.
  await page.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (document.getElementById("r0")) { window.firstRowAt = performance.now(); observer.disconnect(); }
    }).observe(document, { childList: true, subtree: true });
  });
  await page.goto(BASE + "/?q=*.big.example&limit=10000", { waitUntil: "load" });
  const timing = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    return { firstRow: window.firstRowAt, responseStart: nav.responseStart, responseEnd: nav.responseEnd };
  });
  console.log(`10,000 rows: first byte ${timing.responseStart.toFixed(0)} ms, first row ${timing.firstRow.toFixed(0)} ms, last byte ${timing.responseEnd.toFixed(0)} ms`);
  assert.ok(timing.firstRow < timing.responseEnd, JSON.stringify(timing));
  assert.equal(await page.$$eval("#results tbody tr", (r) => r.length), 10000);
  assert.ok(await page.$("#streaming"), "the page says its rows stream");
  assert.match(await page.textContent("#end #cut"), /Cut at 10000 rows/);
  assert.match(await page.textContent("#end #summary"), /^at least 10000 records/);
  // The same view asked through the search form (htmx would wait for the
  // whole answer: a view of more rows than the default is loaded by the browser).
  await page.goto(BASE + "/?q=www.example.com");
  await page.fill("#q", "*.big.example");
  await page.selectOption("select[name=limit]", "10000");
  await Promise.all([page.waitForURL((u) => u.searchParams.get("limit") === "10000"), page.press("#q", "Enter")]);
  await page.waitForSelector("#end #cut");
  assert.equal(await page.$$eval("#results tbody tr", (r) => r.length), 10000);
});

test("no script errors on any page", () => {
  assert.deepEqual(pageErrors, []);
});
