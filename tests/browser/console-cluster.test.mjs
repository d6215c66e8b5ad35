// The console against three nodes of one cluster (PostgreSQL), in Debian's
// chromium: signed in on node1, the cluster view lists all three as
// answered; a tenant owned by node3 and one of its users, opened by deep
// link on node1, show node3 as owner and node; a frozen node3 (SIGSTOP) makes
// the cluster view say "partial" within a few seconds, and it clears once
// node3 runs again. Screenshots under $COLONY_ARTIFACTS (cluster-*.png).
//
//   COLONYD=build/bin/colonyd COLONY_TEST_PG_DSN_FILE=.../dsn-cluster node tests/browser/console-cluster.test.mjs
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import { caller, launch, shotter, signIn, step, watch } from "./kit.mjs";

const HERE = path.dirname(new URL(import.meta.url).pathname);
const LAUNCHER = path.join(HERE, "..", "..", "deploy", "local", "cluster.sh");
const SECRET = "browser-cluster-" + crypto.randomBytes(16).toString("hex");
const ISSUER = "https://idp.example/console", AUDIENCE = "colony-api";
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "colony-console-cluster-"));
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "colony-console-profile-"));

const b64 = (x) => Buffer.from(x).toString("base64url");
function jwt(roles) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: "console-test", iat: now, exp: now + 3600, roles }));
  return `${head}.${body}.${crypto.createHmac("sha256", SECRET).update(`${head}.${body}`).digest("base64url")}`;
}

async function portFree(p) {
  return new Promise((resolve) => {
    const s = net.createServer().once("error", () => resolve(false)).listen(p, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

// A base with base+1..3 (HTTP) and base+1001..1003 (cluster) free.
async function freeBase() {
  for (let i = 0; i < 50; i++) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const ports = [1, 2, 3, 1001, 1002, 1003].map((d) => base + d);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error("no free ports");
}

const httpBase = await freeBase();
const env = {
  ...process.env,
  COLONY_STORE: fs.readFileSync(process.env.COLONY_TEST_PG_DSN_FILE, "utf8").trim(),
  HTTP_BASE: String(httpBase), CLUSTER_BASE: String(httpBase + 1000),
  CLUSTER_NAME: "browser-" + crypto.randomBytes(4).toString("hex"),
  // Lenient probes: frozen below, node3 must stay a member (not be voted dead) while the page watches.
  COLONYD_ARGS: `--auth-jwt-hs256-secret ${SECRET} --auth-issuer ${ISSUER} --auth-audience ${AUDIENCE} --cluster.missed-probes 30 --console.operator-actions true`,
};
const launcher = (...args) => {
  const r = spawnSync(LAUNCHER, args, { env, encoding: "utf8", timeout: 120000 });
  if (r.status !== 0) throw new Error(`cluster.sh ${args.join(" ")}: ${r.stdout}${r.stderr}`);
};
const pid = (k) => Number(fs.readFileSync(path.join(dir, `node${k}.pid`), "utf8"));
const url = (k) => `http://127.0.0.1:${httpBase + k}`;

let browser = null, failed = false, frozen = false;
try {
  launcher("start", "3", dir);
  const key = jwt(["platform_admin"]);
  const call = (k) => caller(url(k), key);
  // Converged: node1 sees three active members owning every shard, nothing moving.
  const deadline = Date.now() + 60000;
  for (;;) {
    const { doc } = await call(1)("GET", "/v1/cluster");
    const active = doc?.members?.filter((m) => m.status === "active") ?? [];
    if (active.length === 3 && active.reduce((s, m) => s + m.shards, 0) === 4096 && doc.shardsMoving === 0) break;
    if (Date.now() > deadline) throw new Error("the cluster did not converge: " + JSON.stringify(doc));
    await new Promise((r) => setTimeout(r, 300));
  }

  browser = await launch(profile);
  const page = browser.pages()[0] ?? await browser.newPage();
  const problems = watch(page, () => frozen);
  const shot = shotter(page, "cluster-");

  await signIn(page, url(1), key);
  for (const n of ["node1", "node2", "node3"])
    await page.waitForSelector(`#nodes tr[data-node="${n}"]`);
  await page.waitForFunction(() => [...document.querySelectorAll("#nodes tr[data-node]")]
    .filter((r) => r.lastElementChild.textContent === "yes").length === 3, null, { timeout: 10000 });
  assert.equal(await page.textContent("#answered-by"), "node1");
  assert.equal(await page.$("[data-partial]"), null);
  await shot("nodes");
  step("signed in with a JWT on node1: three members, each answered");

  // A tenant whose owner is node3, and a user of it, through node1.
  let t = null;
  for (let i = 0; i < 200 && !t; i++) {
    const { status, doc } = await call(1)("POST", "/v1/tenants", { slug: "bc-" + crypto.randomBytes(5).toString("hex"), name: "B" });
    assert.equal(status, 201);
    if ((await call(1)("GET", `/v1/cluster/placement/${doc.id}`)).doc.owner === "node3") t = doc;
  }
  assert.ok(t, "a tenant owned by node3");
  const u = (await call(1)("POST", `/v1/tenants/${t.id}/users`, { email: "bc@example.com", name: "BC" })).doc;
  await page.goto(`${url(1)}/console/tenants/${t.id}`);
  await page.waitForSelector("#tenant-owner");
  assert.equal(await page.textContent("#tenant-owner"), "node3");
  assert.equal(await page.textContent("#tenant-live"), "2");
  await shot("tenant");
  await page.goto(`${url(1)}/console/actors/user/${u.id}?tenant=${t.id}`);
  await page.waitForSelector("#actor-live");
  assert.equal(await page.textContent("#actor-live"), "yes");
  assert.equal(await page.textContent("#actor-owner"), "node3");
  assert.ok((await page.textContent("#actor-state")).includes("bc@example.com"));
  await shot("actor");
  step("tenant and actor deep links on node1 show what node3 holds");

  // node3 frozen: the pushed snapshot turns partial, naming node3; then clears.
  await page.goto(`${url(1)}/console`);
  await page.waitForSelector('#nodes tr[data-node="node3"]');
  frozen = true;
  process.kill(pid(3), "SIGSTOP");
  const stoppedAt = Date.now();
  try {
    await page.waitForSelector("[data-partial]", { timeout: 8000 });
    assert.match(await page.textContent("[data-partial]"), /node3/);
    step(`node3 frozen: the page said partial after ${Date.now() - stoppedAt} ms`);
    await shot("partial");
  } finally {
    process.kill(pid(3), "SIGCONT");
  }
  await page.waitForFunction(() => !document.querySelector("[data-partial]"), null, { timeout: 15000 });
  frozen = false;
  step("node3 running again: the banner went away");

  // The admin's session offers no action; an operator's does. Passivating
  // node3's actor from node1's page: the button asks once more, then the
  // actor is no longer live at its owner.
  assert.equal(await page.$("button.act"), null);
  await page.click("#signout");
  await signIn(page, url(1), jwt(["platform_operator"]));
  await page.waitForFunction(() => document.querySelectorAll('#nodes button.act').length === 3, null, { timeout: 10000 });
  assert.match(await page.textContent('#nodes tr[data-node="node2"] button.act'), /^Drain$/);
  await page.goto(`${url(1)}/console/actors/user/${u.id}?tenant=${t.id}`);
  await page.waitForSelector("#actor-live");
  assert.equal(await page.textContent("#actor-live"), "yes");
  await page.click("button.act");
  await page.waitForSelector("button.act[data-armed]");
  assert.match(await page.textContent("button.act"), /^Confirm: Passivate$/);
  await page.click("button.act");
  await page.waitForFunction(() => document.querySelector("#actor-live")?.textContent === "no", null, { timeout: 5000 });
  assert.match(await page.textContent("#notice"), /passivate user\/.*: done/);
  await shot("passivated");
  // Audit records of actions are appended in batches, 200 ms after the first.
  let audited;
  for (let i = 0; i < 50; i++) {
    audited = await call(1)("GET", "/v1/audit-log?action=actor.passivate");
    if (audited.doc.data.length > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(audited.doc.data.some((r) => r.target === `actor:user/${t.id}/${u.id}` && r.outcome === "success"), JSON.stringify(audited.doc));
  step("an operator passivated node3's actor from node1's page; audited");

  assert.deepEqual(problems, [], problems.join("\n"));
  step("no console errors, page errors or failed requests");
} catch (e) {
  failed = true;
  console.error(e);
  for (const k of [1, 2, 3]) {
    const log = path.join(dir, `node${k}.log`);
    if (fs.existsSync(log)) console.error(`--- node${k}.log\n` + fs.readFileSync(log, "utf8").slice(-3000));
  }
} finally {
  await browser?.close().catch(() => {});
  try { process.kill(pid(3), "SIGCONT"); } catch { /* gone */ }
  try { launcher("stop", dir); } catch (e) { console.error(e); failed = true; }
  fs.rmSync(profile, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
