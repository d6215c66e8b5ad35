// The console in a real browser: Debian's chromium driven by playwright-core
// (from the lock file; no browser download), against a real colonyd on
// loopback (docs/console.md, "Tests"). Every view is visited; any console
// error, page error or failed request fails the test; a screenshot of each
// view is kept under $COLONY_ARTIFACTS (build/console-shots by default).
//
//   COLONYD=build/bin/colonyd node tests/browser/console.test.mjs
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import { caller, freePort, launch, shotter, step, watch } from "./kit.mjs";

const COLONYD = process.env.COLONYD || "build/bin/colonyd";

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "colony-console-"));
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "colony-console-profile-"));
let node = null;

// Starts colonyd on `port` (the same one again after a restart: the page's origin must not change).
async function startNode(port) {
  const log = fs.openSync(path.join(dataDir, "colonyd.log"), "a");
  node = spawn(COLONYD, ["--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--store", "sqlite:",
    "--debug.fault-injection", "true"], { stdio: ["ignore", log, log] });
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (node.exitCode !== null) throw new Error("colonyd exited early:\n" + fs.readFileSync(path.join(dataDir, "colonyd.log"), "utf8"));
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.status === 200) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("colonyd not ready");
}

async function stopNode() {
  if (!node || node.exitCode !== null) return;
  const done = new Promise((r) => node.once("exit", r));
  node.kill("SIGTERM");
  await done;
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
let browser = null;
let failed = false;
try {
  await startNode(port);
  const key = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim();
  const call = caller(base, key);

  browser = await launch(profile);
  const page = browser.pages()[0] ?? await browser.newPage();
  let restarting = false; // while the node restarts, its streams' reconnects are refused: expected
  const problems = watch(page, () => restarting);
  const shot = shotter(page);

  // The page: strict CSP, small, no credential in any URL.
  const index = await fetch(`${base}/console`, { headers: { "Accept-Encoding": "gzip" } });
  assert.equal(index.status, 200);
  assert.match(index.headers.get("content-security-policy"), /default-src 'self'; script-src 'self'/);
  let firstLoad = 0;
  for (const f of ["/console", "/console/assets/console.js", "/console/assets/console.css"]) {
    const r = await fetch(base + f, { headers: { "Accept-Encoding": "gzip" } });
    assert.equal(r.status, 200, f);
    firstLoad += Number(r.headers.get("content-length"));
  }
  assert.ok(firstLoad < 100 * 1024, `first load ${firstLoad} bytes gzipped`);
  step(`first load ${firstLoad} bytes gzipped, CSP set`);

  // Sign in.
  await page.goto(`${base}/console`);
  await page.waitForSelector("#signin");
  await shot("signin");
  await page.fill("#token", key);
  await page.click("#signin button[type=submit]");
  await page.waitForSelector("#nodes tr[data-node]");
  const cookies = await browser.cookies(base);
  const session = cookies.find((c) => c.name === "colony_console");
  assert.ok(session, "a session cookie");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  assert.ok(!session.value.includes(key), "the cookie does not carry the key in the clear");
  assert.equal(await page.evaluate(() => document.cookie.includes("colony_console")), false);
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
  for (const r of [page.url()]) assert.ok(!r.includes(key));
  step("signed in; the session is an HttpOnly SameSite=Strict cookie, nothing in storage");

  // The cluster view lists the node; a reload keeps the session.
  const nodeName = (await call("GET", "/v1/admin/nodes")).doc.answeredBy;
  assert.equal(await page.textContent("#nodes tr[data-node] td"), nodeName);
  await page.reload();
  await page.waitForSelector(`#nodes tr[data-node="${nodeName}"]`);
  await shot("cluster");
  step("cluster view lists the node, and survives a reload");

  // Creating users through the API raises the live count on the page, without a reload.
  const before = Number((await page.textContent("#live-total")).replace(/,/g, ""));
  const t = (await call("POST", "/v1/tenants", { slug: "web-" + Date.now(), name: "Web" })).doc;
  const users = [];
  for (let i = 0; i < 3; i++) users.push((await call("POST", `/v1/tenants/${t.id}/users`, { email: `w${i}@example.com`, name: `W${i}` })).doc);
  await page.waitForFunction((n) => Number(document.querySelector("#live-total").textContent.replace(/,/g, "")) >= n, before + 4, { timeout: 10000 });
  step(`live actors rose from ${before} to ${before + 4}+ without a reload`);

  // The actors view.
  await page.click('#nav a[data-view="actors"]');
  await page.waitForSelector('#kinds tr[data-kind="user"]');
  await page.waitForFunction(() => Number(document.querySelector('#kinds tr[data-kind="user"] [data-live]').textContent) >= 3);
  assert.ok((await page.textContent("#top-tenants")).includes(t.id));
  await shot("actors");
  step("actors view: by kind, and the tenant among the top tenants");

  // The stores view: this node's commits, counted since it started, rising as users are created.
  await page.click('#nav a[data-view="stores"]');
  await page.waitForSelector(`#stores tr[data-store-node="${nodeName}"]`);
  assert.equal(await page.textContent("#store-kind"), "sqlite");
  const commits = async () => Number((await page.textContent(`#stores tr[data-store-node="${nodeName}"] [data-commits]`)).replace(/,/g, ""));
  const commitsBefore = await commits();
  await call("POST", "/v1/tenants", { slug: "stores-" + Date.now(), name: "Stores" }); // another tenant: t's counts stay
  await page.waitForFunction(([n, c]) => Number(document.querySelector(`#stores tr[data-store-node="${n}"] [data-commits]`).textContent.replace(/,/g, "")) > c, [nodeName, commitsBefore], { timeout: 5000 });
  await shot("stores");
  step(`stores view: commits rose past ${commitsBefore} without a reload`);

  // The mailboxes view: one user stalled on a read while four more wait shows a depth of 4, growing, without a reload.
  await page.click('#nav a[data-view="mailboxes"]');
  await page.waitForSelector('#mailbox-kinds tr[data-kind="user"]');
  const stalledPath = `${base}/v1/tenants/${t.id}/users/${users[1].id}`;
  const auth = { Authorization: `Bearer ${key}` };
  const stalled = fetch(stalledPath, { headers: { ...auth, "X-Colony-Fault": "stall=4000" } });
  await new Promise((r) => setTimeout(r, 300));
  const waiting = [1, 2, 3, 4].map(() => fetch(stalledPath, { headers: auth }));
  await page.waitForFunction((id) => document.querySelector(`#mailbox-deepest tr[data-actor="${id}"] [data-depth]`)?.textContent === "4", users[1].id, { timeout: 3500 });
  assert.match(await page.textContent(`#mailbox-deepest tr[data-actor="${users[1].id}"]`), /growing/);
  await shot("mailboxes");
  assert.deepEqual((await Promise.all([stalled, ...waiting])).map((r) => r.status), [200, 200, 200, 200, 200]);
  await page.waitForFunction((id) => !document.querySelector(`#mailbox-deepest tr[data-actor="${id}"]`), users[1].id, { timeout: 5000 });
  // The first read routed behind the stalled one waited ~3.7 s: the users' sampled queueing time shows it
  // (over the last census window; the sampler's census runs every second).
  const waitMax = async () => Number((await page.getAttribute('#mailbox-kinds tr[data-kind="user"] [data-wait-max]', "data-wait-max")) || 0);
  const longest = [];
  for (let i = 0; i < 40 && !longest.some((w) => w >= 2 ** 21); i++) {
    longest.push(await waitMax());
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(longest.some((w) => w >= 2 ** 21 && w <= 2 ** 23), `the users' wait max over the last windows: ${longest}`);
  step("mailboxes view: a stalled actor's depth of 4, growing, then drained; the wait behind it timed");

  // Calls by the tenant's own key (platform calls are not the tenant's): two reads and a miss.
  const tenantKey = (await call("POST", `/v1/tenants/${t.id}/api-keys`, { name: "console", roles: ["admin"] })).doc.key;
  const asTenant = { Authorization: `Bearer ${tenantKey}` };
  const own = await Promise.all([`/v1/tenants/${t.id}`, `/v1/tenants/${t.id}/users/${users[0].id}`,
    `/v1/tenants/${t.id}/users/${crypto.randomUUID()}`].map((p) => fetch(base + p, { headers: asTenant })));
  assert.deepEqual(own.map((r) => r.status), [200, 200, 404]);

  // The tenant's deep link, pasted.
  await page.goto(`${base}/console/tenants/${t.slug}`);
  await page.waitForSelector("#tenant-id");
  assert.equal(await page.textContent("#tenant-id"), t.id);
  assert.equal(await page.textContent("#tenant-owner"), nodeName);
  assert.equal(await page.textContent("#tenant-live"), "4");
  assert.match(await page.textContent("#tenant-usage"), /users\s*3/);
  assert.match(await page.textContent("#tenant-requests"), /requests33client errors \(4xx, not 429\)11server errors \(5xx\)00/);
  assert.notEqual(await page.textContent("#tenant-rps"), "0.00");
  assert.match(await page.textContent("#tenant-burst-used"), /^\d+%$/); // the free plan has a rate: its bucket's use
  await page.waitForFunction(() => [...document.querySelectorAll("#tenant-events tbody tr")].filter((r) => r.textContent.includes("user.created")).length === 3, null, { timeout: 5000 });
  await shot("tenant");
  step("tenant deep link: owner, live actors, usage, its recent events");

  // The actor's deep link.
  await page.goto(`${base}/console/actors/user/${users[0].id}?tenant=${t.id}`);
  await page.waitForSelector("#actor-live");
  assert.equal(await page.textContent("#actor-live"), "yes");
  assert.equal(await page.textContent("#actor-owner"), nodeName);
  assert.ok((await page.textContent("#actor-state")).includes("w0@example.com"));
  // Newest first as of the page's probe: the tenant key's read, then its creation.
  assert.match(await page.textContent("#actor-last-handled"), /^get · create/);
  assert.equal(await page.textContent('#actor-lifecycle tr[data-event="activated"] td'), "activated");
  await shot("actor");
  step("actor deep link: live, its node, its state");

  // The live event tail: a new event within 2 s, and again after the node restarts.
  await page.goto(`${base}/console/events?tenant=${t.id}`);
  await page.waitForSelector("#tail");
  const u4 = (await call("POST", `/v1/tenants/${t.id}/users`, { email: "late@example.com", name: "Late" })).doc;
  const seenAt = Date.now();
  await page.waitForFunction(() => [...document.querySelectorAll("#tail tbody tr")].some((r) => r.textContent.includes("user.created")), null, { timeout: 2000 });
  step(`event tail: a new event shown within ${Date.now() - seenAt} ms`);
  const positionsBefore = await page.$$eval("#tail tbody tr", (rows) => rows.map((r) => Number(r.dataset.position)));
  await shot("events");
  restarting = true;
  await stopNode();
  await startNode(port);
  await call("POST", `/v1/tenants/${t.id}/users`, { email: "after@example.com", name: "After" });
  await page.waitForFunction((n) => document.querySelectorAll("#tail tbody tr").length > n, positionsBefore.length, { timeout: 20000 });
  restarting = false;
  const positionsAfter = await page.$$eval("#tail tbody tr", (rows) => rows.map((r) => Number(r.dataset.position)));
  assert.equal(new Set(positionsAfter).size, positionsAfter.length, "no event shown twice after the resume");
  assert.ok(Math.max(...positionsAfter) > Math.max(...positionsBefore));
  step("event tail resumed after the node restarted, nothing repeated");
  void u4;

  // Every view once more, after the restart: still signed in, no errors.
  for (const v of ["/console", "/console/actors", `/console/tenants/${t.id}`, "/console/nowhere"]) {
    await page.goto(base + v);
    await page.waitForSelector("main h1");
  }
  step("every view loads after the restart with the same session");

  assert.deepEqual(problems, [], problems.join("\n"));
  step("no console errors, page errors or failed requests");
} catch (e) {
  failed = true;
  console.error(e);
  const log = path.join(dataDir, "colonyd.log");
  if (fs.existsSync(log)) console.error(fs.readFileSync(log, "utf8").slice(-4000));
} finally {
  await browser?.close().catch(() => {});
  await stopNode().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
  fs.rmSync(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
