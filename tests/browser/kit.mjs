// What the console's browser tests share: Debian's chromium through
// playwright-core, a free port, and a watch on the page that collects every
// console error, page error, failed request and error answer.
import { chromium } from "playwright-core";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

export const SHOTS = process.env.COLONY_ARTIFACTS || "build/console-shots";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
fs.mkdirSync(SHOTS, { recursive: true });

export async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function launch(profile) {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 800 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}

// Collects the page's problems; `tolerate()` says when a stream's refused
// reconnect is expected (a node restarting or frozen on purpose).
export function watch(page, tolerate = () => false) {
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (tolerate() && m.location()?.url?.includes("/v1/admin/stream")) return;
    problems.push(`console error: ${m.text()} (${m.location()?.url})`);
  });
  // A fetch still in flight when the test navigates away is aborted by the
  // browser: not a failure of the page, but only if a navigation of the
  // main frame began after the fetch did.
  let navigations = 0;
  const startedAt = new WeakMap();
  page.on("request", (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) navigations++;
    startedAt.set(r, navigations);
  });
  page.on("requestfailed", (r) => {
    // An EventSource the test itself ends (navigation, a restart) is not a failure of the page.
    if (r.url().includes("/v1/admin/stream")) return;
    if (r.failure()?.errorText === "net::ERR_ABORTED" && navigations > (startedAt.get(r) ?? navigations)) return;
    problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400 && !(r.url().endsWith("/console/session") && r.status() === 401))
      problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  return problems;
}

export const shotter = (page, prefix = "") => (name) =>
  page.screenshot({ path: path.join(SHOTS, `${prefix}${name}.png`), fullPage: true });

export const step = (name) => console.log(`ok - ${name}`);

// JSON over fetch with a bearer credential: { status, doc, headers }.
export function caller(base, key) {
  return async (method, p, body) => {
    const r = await fetch(base + p, { method, headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
    const doc = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
    return { status: r.status, doc, headers: r.headers };
  };
}

// Signs in on the page at `base` with `key` and waits for the cluster view.
export async function signIn(page, base, key) {
  await page.goto(`${base}/console`);
  await page.waitForSelector("#signin");
  await page.fill("#token", key);
  await page.click("#signin button[type=submit]");
  await page.waitForSelector("#nodes tr[data-node]");
}
