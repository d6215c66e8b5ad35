// The Colony console: a single page over the node's /v1/admin/* API
// (docs/console.md). Plain ES module, no framework, no build step. One
// Server-Sent Events stream per tab (/v1/admin/stream): the node pushes a
// snapshot every second while someone watches, and the event tail on the
// events view. The session is an HttpOnly cookie the node sets at sign-in; no
// credential is ever kept where scripts can read it.

const view = document.getElementById("view");
const statusLine = document.getElementById("status");
const signout = document.getElementById("signout");
let stream = null;          // the snapshot stream of this tab
let tail = null;            // the event tail's stream (events view only)
let lastSnapshot = null;
let previousSnapshot = null;
let render = () => {};      // the current view's redraw on a new snapshot
let session = {};           // GET /console/session: subject, node, operatorActions
const storesHistory = [];   // the last 11 snapshots' stores part: a 10 s window for rates and quantiles

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const num = (n) => (n === null || n === undefined ? "-" : Number(n).toLocaleString("en-US"));
const ago = (s) => (s >= 86400 ? `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h` : s >= 3600 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`);
const table = (head, rows, id) => `<table${id ? ` id="${id}"` : ""}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.join("") || `<tr><td colspan="${head.length}" class="muted">none</td></tr>`}</tbody></table>`;

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json", ...(options.headers || {}) }, ...options });
  if (res.status === 401) { showSignIn(); throw new Error("signed out"); }
  const body = res.headers.get("Content-Type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw Object.assign(new Error(body?.detail || `HTTP ${res.status}`), { status: res.status, body });
  return body;
}

// -- operator actions (shown only when the session may take them) -----------------
// A button asks once more before it acts ("armed" for 5 s, kept across the
// once-a-second redraws); the node audits every action.

let armed = null; // { key, until }
const notice = document.getElementById("notice");

function actButton(key, label, path) {
  if (!session.operatorActions) return "";
  const isArmed = armed?.key === key && armed.until > Date.now();
  return `<button class="act" data-act="${esc(key)}" data-path="${esc(path)}"${isArmed ? " data-armed" : ""}>${esc(isArmed ? `Confirm: ${label}` : label)}</button>`;
}

function say(text, bad) {
  notice.textContent = text;
  notice.className = bad ? "bad" : "";
  notice.hidden = false;
}

document.addEventListener("click", async (e) => {
  const b = e.target.closest("button.act");
  if (!b) return;
  const key = b.dataset.act;
  if (!(armed?.key === key && armed.until > Date.now())) {
    armed = { key, until: Date.now() + 5000 };
    render();
    return;
  }
  armed = null;
  b.disabled = true;
  try {
    const r = await api(b.dataset.path, { method: "POST" });
    say(`${key}: done${r?.status ? ` (${r.status})` : ""}`);
  } catch (err) {
    if (err.message !== "signed out") say(`${key}: ${err.message}`, true);
  }
  render();
});

function partial(doc) {
  if (!doc?.partial) return "";
  return `<div class="banner" data-partial>Partial answer: no answer from ${doc.unanswered.map((u) => `<b>${esc(u.nodeName)}</b> (${esc(u.reason)})`).join(", ")}.</div>`;
}

// -- sign-in -------------------------------------------------------------------------

function showSignIn(message) {
  closeStreams();
  signout.hidden = true;
  statusLine.textContent = "";
  view.innerHTML = `<h1>Sign in</h1>
    <form class="signin" id="signin">
      <label for="token">Platform credential (API key or token)</label>
      <input id="token" type="password" autocomplete="off" required>
      <button type="submit">Sign in</button>
      <p class="bad" id="signin-error">${esc(message || "")}</p>
      <p class="muted">The node keeps the session in an HttpOnly cookie; the credential is not stored in this browser.</p>
    </form>`;
  document.getElementById("signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = document.getElementById("token").value.trim();
    const res = await fetch("/console/session", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });
    if (res.status === 204) { route(); return; }
    const doc = await res.json().catch(() => ({}));
    document.getElementById("signin-error").textContent = doc.detail || `HTTP ${res.status}`;
  });
}

signout.addEventListener("click", async () => {
  await fetch("/console/session", { method: "DELETE", credentials: "same-origin" });
  showSignIn("Signed out.");
});

// -- the snapshot stream ------------------------------------------------------------

function closeStreams() {
  stream?.close(); stream = null;
  tail?.close(); tail = null;
}

function openStream() {
  if (stream) return;
  stream = new EventSource("/v1/admin/stream", { withCredentials: true });
  stream.addEventListener("snapshot", (e) => {
    previousSnapshot = lastSnapshot;
    lastSnapshot = JSON.parse(e.data);
    if (lastSnapshot.stores) {
      storesHistory.push({ at: Date.parse(lastSnapshot.at), doc: lastSnapshot.stores });
      if (storesHistory.length > 11) storesHistory.shift();
    }
    statusLine.textContent = `live · answered by ${lastSnapshot.nodes?.answeredBy ?? "?"} · ${new Date(lastSnapshot.at).toLocaleTimeString()}`;
    statusLine.className = lastSnapshot.nodes?.partial ? "warn" : "muted";
    render();
  });
  stream.addEventListener("error", () => {
    statusLine.textContent = "reconnecting…";
    statusLine.className = "warn";
  });
}

// -- views ------------------------------------------------------------------------------

function clusterView() {
  render = () => {
    const n = lastSnapshot?.nodes;
    if (!n) return;
    const rows = n.nodes.map((m) => `<tr data-node="${esc(m.nodeName)}">
      <td>${esc(m.nodeName)}</td><td class="${m.status === "active" ? "ok" : m.status === "dead" ? "bad" : "warn"}">${esc(m.status)}</td>
      <td>${esc(m.version ?? "-")}</td><td>${m.uptimeSeconds !== undefined ? ago(m.uptimeSeconds) : "-"}</td>
      <td class="num">${m.leaseRemainingMs === null ? "-" : num(m.leaseRemainingMs) + " ms"}</td>
      <td class="num">${num(m.shards)}</td><td class="num">${num(m.targetShards)}</td>
      <td class="num" data-live-actors>${num(m.liveActors)}</td><td>${m.answered ? "yes" : '<span class="bad">no</span>'}</td>${session.operatorActions ? `<td>${
        m.status === "active" ? actButton(`drain ${m.nodeName}`, "Drain", `/v1/admin/nodes/${encodeURIComponent(m.nodeName)}/drain`)
        : m.status === "draining" ? actButton(`undrain ${m.nodeName}`, "Undrain", `/v1/admin/nodes/${encodeURIComponent(m.nodeName)}/undrain`) : ""}</td>` : ""}</tr>`);
    const live = n.nodes.filter((m) => m.status !== "dead");
    view.innerHTML = `<h1>Cluster</h1>
      <div class="cards">
        <div class="card">nodes<b id="node-count">${live.length}</b></div>
        <div class="card">live actors<b id="live-total">${num(live.reduce((s, m) => s + (m.liveActors || 0), 0))}</b></div>
        <div class="card">answered by<b id="answered-by">${esc(n.answeredBy)}</b></div>
      </div>
      ${n.membershipAgrees ? "" : '<div class="banner" id="disagree">The members disagree about who is active.</div>'}
      ${partial(n)}
      ${table(["node", "status", "version", "uptime", "lease", "shards", "target", "live actors", "answered", ...(session.operatorActions ? ["action"] : [])], rows, "nodes")}`;
  };
  render();
}

function rate(kind, field) {
  const a = previousSnapshot?.actors?.kinds?.find((k) => k.kind === kind);
  const b = lastSnapshot?.actors?.kinds?.find((k) => k.kind === kind);
  if (!a || !b) return "-";
  const secs = (Date.parse(lastSnapshot.at) - Date.parse(previousSnapshot.at)) / 1000;
  return secs > 0 ? `${((b[field] - a[field]) / secs).toFixed(1)}/s` : "-";
}

function actorsView() {
  render = () => {
    const a = lastSnapshot?.actors;
    if (!a) return;
    const kinds = a.kinds.map((k) => `<tr data-kind="${esc(k.kind)}"><td>${esc(k.kind)}</td><td class="num" data-live>${num(k.live)}</td>
      <td class="num">${num(k.activations)}</td><td class="num">${rate(k.kind, "activations")}</td>
      <td class="num">${num(k.passivations)}</td><td class="num">${rate(k.kind, "passivations")}</td>
      <td class="num">${num(k.crashes)}</td><td class="num">${rate(k.kind, "crashes")}</td>
      <td>${Object.entries(k.byNode).map(([node, v]) => `${esc(node)}: ${num(v.live)}`).join(", ")}</td></tr>`);
    const tenants = a.topTenants.map((t) => `<tr><td><a href="/console/tenants/${encodeURIComponent(t.tenantId)}">${esc(t.tenantId)}</a></td>
      <td class="num">${num(t.live)}</td><td>${Object.entries(t.byKind).filter(([, v]) => v).map(([k, v]) => `${esc(k)} ${num(v)}`).join(", ")}</td><td>${t.nodes.map(esc).join(", ")}</td></tr>`);
    const crashes = (lastSnapshot.crashes?.data || []).map((c) => `<tr><td>${esc(c.at)}</td><td>${esc(c.node)}</td>
      <td><a href="/console/actors/${encodeURIComponent(c.kind)}/${encodeURIComponent(c.id)}?tenant=${encodeURIComponent(c.tenantId)}">${esc(c.kind)}/${esc(c.id)}</a></td>
      <td>${esc(c.reason)}</td></tr>`);
    view.innerHTML = `<h1>Actors</h1>${partial(a)}
      ${table(["kind", "live", "activations", "/s", "passivations", "/s", "crashes", "/s", "live by node"], kinds, "kinds")}
      <h2>Top tenants by live actors <span class="muted">(${num(a.tenantsLive)} tenants live)</span></h2>
      ${table(["tenant", "live", "by kind", "nodes"], tenants, "top-tenants")}
      <h2>Last crashes</h2>${table(["at", "node", "actor", "reason"], crashes, "crashes")}`;
  };
  render();
}

// A quantile of the observations between two cumulative bucket lists
// ([[le, count], ...]): the bound of the bucket the rank falls in.
function windowQuantile(a, b, q) {
  if (!a || !b) return null;
  const before = new Map(a.buckets.map(([le, c]) => [le, c]));
  const n = b.count - a.count;
  if (n <= 0) return null;
  for (const [le, c] of b.buckets) if (c - (before.get(le) ?? 0) >= q * n) return le;
  return null; // past the last finite bound
}

function storesView() {
  render = () => {
    const s = lastSnapshot?.stores;
    if (!s) return;
    const first = storesHistory[0], last = storesHistory[storesHistory.length - 1];
    const secs = first && last && last.at > first.at ? (last.at - first.at) / 1000 : 0;
    const then = (name) => first?.doc.nodes.find((n) => n.nodeName === name);
    const ms = (v) => (v === null || v === undefined ? "-" : `${(v * 1000).toFixed(v < 0.001 ? 2 : 1)} ms`);
    const perSec = (now, before) => (secs > 0 && before !== undefined ? `${((now - before) / secs).toFixed(1)}/s` : "-");
    const rows = s.nodes.map((n) => {
      const o = then(n.nodeName);
      const c = n.store.commitSeconds, ob = o?.store.commitSeconds;
      const batches = n.store.batchSize, obb = o?.store.batchSize;
      const meanBatch = obb && batches.count > obb.count ? ((batches.sum - obb.sum) / (batches.count - obb.count)).toFixed(1) : "-";
      return `<tr data-store-node="${esc(n.nodeName)}"><td>${esc(n.nodeName)}</td><td class="num" data-commits>${num(c.count)}</td>
        <td class="num">${perSec(c.count, ob?.count)}</td><td class="num">${ms(windowQuantile(ob, c, 0.5))}</td>
        <td class="num">${ms(windowQuantile(ob, c, 0.99))}</td><td class="num">${meanBatch}</td>
        <td class="num" data-backlog>${num(n.outbox.backlog)}</td><td class="num">${n.outbox.oldestAgeSeconds.toFixed(1)} s</td>
        <td class="num">${num(n.outbox.published)}</td>
        <td>${!n.kafka.configured ? '<span class="muted">off</span>' : n.kafka.brokersUp ? '<span class="ok">up</span>' : '<span class="bad">down</span>'}</td>
        <td class="num">${n.kafka.configured ? num(n.kafka.consumerLagTotal) : "-"}</td>
        <td class="num" data-webhook-backlog>${n.webhooks.backlog ? num(n.webhooks.backlog.pending) : "-"}</td>
        <td>${Object.entries(n.webhooks.attempts).map(([k, v]) => `${esc(k)} ${num(v)}`).join(", ")}</td></tr>`;
    });
    const lag = s.nodes.flatMap((n) => n.kafka.consumerLag.map((l) => `<tr><td>${esc(n.nodeName)}</td><td>${esc(l.topic)}</td><td class="num">${l.partition}</td><td class="num">${num(l.lag)}</td></tr>`));
    view.innerHTML = `<h1>Stores and Kafka</h1>${partial(s)}
      <div class="cards">
        <div class="card">store<b id="store-kind">${esc(s.store)}</b></div>
        <div class="card">outbox backlog<b id="outbox-backlog">${num(s.totals.outboxBacklog)}</b></div>
        <div class="card">oldest unpublished<b>${s.totals.outboxOldestAgeSeconds.toFixed(1)} s</b></div>
        <div class="card">consumer lag<b id="consumer-lag">${num(s.totals.consumerLag)}</b></div>
        <div class="card">webhook backlog<b id="webhook-backlog">${num(s.totals.webhookBacklog)}</b></div>
      </div>
      <p class="muted">Rates and quantiles over the last ${secs ? secs.toFixed(0) : "-"} s (from the node's histograms, to the bucket).</p>
      ${table(["node", "commits", "/s", "commit p50", "commit p99", "batch", "outbox", "oldest", "published", "kafka", "lag", "webhooks pending", "webhook attempts"], rows, "stores")}
      <h2>Consumer lag by partition</h2>${table(["node", "topic", "partition", "lag"], lag, "lag")}`;
  };
  render();
}

function mailboxesView() {
  render = () => {
    const m = lastSnapshot?.mailboxes;
    if (!m) return;
    const n = (v) => (v === null || v === undefined ? "-" : num(v));
    const us = (v) => (v === null || v === undefined ? "-" : v >= 1000 ? `≤ ${num(v / 1000)} ms` : `≤ ${v} µs`);
    const kinds = m.kinds.map((k) => `<tr data-kind="${esc(k.kind)}"><td>${esc(k.kind)}</td><td class="num">${num(k.live)}</td>
      <td class="num">${num(k.nonEmpty)}</td><td class="num" data-queued>${num(k.queued)}</td><td class="num">${n(k.p50)}</td>
      <td class="num">${n(k.p99)}</td><td class="num" data-max>${num(k.max)}</td>
      <td class="num">${num(k.queueingWindow.samples)}</td><td class="num">${us(k.queueingWindow.p50Us)}</td>
      <td class="num">${us(k.queueingWindow.p99Us)}</td><td class="num" data-wait-max="${k.queueingWindow.maxUs ?? ""}">${us(k.queueingWindow.maxUs)}</td></tr>`);
    const deep = m.deepest.map((d) => `<tr data-actor="${esc(d.id)}"><td class="num" data-depth>${num(d.depth)}</td>
      <td class="num">${n(d.depthBefore)}</td><td>${d.growing ? '<span class="bad">growing</span>' : ""}</td><td>${esc(d.node)}</td>
      <td>${esc(d.kind)}</td><td><a href="/console/tenants/${encodeURIComponent(d.tenantId)}">${esc(d.tenantId)}</a></td>
      <td><a href="/console/actors/${encodeURIComponent(d.kind)}/${encodeURIComponent(d.id)}?tenant=${encodeURIComponent(d.tenantId)}">${esc(d.id)}</a></td></tr>`);
    view.innerHTML = `<h1>Mailboxes</h1>${partial(m)}
      <div class="cards"><div class="card">growing<b id="mailboxes-growing">${num(m.growing)}</b></div></div>
      <p class="muted">Depth: commands routed to an activation that it has not handled yet. p50 and p99 over every live activation of the kind, to the bucket (0, 1, 2, 4, 8, …).
        Wait: the queueing time of sampled commands (routed to handled) over the last ${m.windowMs ? (m.windowMs / 1000).toFixed(1) + " s" : "-"}, to the bucket (powers of two of µs).</p>
      ${table(["kind", "live", "non-empty", "queued", "p50", "p99", "max", "sampled", "wait p50", "wait p99", "wait max"], kinds, "mailbox-kinds")}
      <h2>Deepest mailboxes <span class="muted">(growing: deeper than ${m.windowMs ? (m.windowMs / 1000).toFixed(1) + " s" : "-"} before)</span></h2>
      ${table(["depth", "before", "", "node", "kind", "tenant", "actor"], deep, "mailbox-deepest")}`;
  };
  render();
}

function tenantView(id) {
  let busy = false;
  const recent = []; // the tenant's last 10 events from the node's tail, newest first
  const recentRows = () => recent.join("") || '<tr><td colspan="4" class="muted">none yet</td></tr>';
  const follow = (tenantId) => {
    if (tail) return;
    tail = new EventSource(`/v1/admin/stream?${new URLSearchParams({ events: "1", tenant: tenantId })}`, { withCredentials: true });
    tail.addEventListener("event", (e) => {
      const item = JSON.parse(e.data), ev = item.event || {};
      recent.unshift(`<tr data-position="${item.position}"><td class="num">${item.position}</td><td>${esc(ev.occurredAt || "")}</td>
        <td>${esc(ev.type || "")}</td><td>${esc(ev.aggregateKind || "")}/${esc(ev.aggregateId || "")}</td></tr>`);
      if (recent.length > 10) recent.length = 10;
      const body = document.querySelector("#tenant-events tbody");
      if (body) body.innerHTML = recentRows();
    });
  };
  render = async () => {
    if (busy) return;
    busy = true;
    try {
      const t = await api(`/v1/admin/tenants/${encodeURIComponent(id)}`);
      const u = t.usage?.usage || {}, l = t.usage?.limits || {};
      const usage = [["users", u.users, l.maxUsers], ["API calls this month", u.apiCallsThisMonth, l.apiCallsPerMonth],
        ["storage MB", u.storageMb, l.storageMb], ["AI requests this month", u.aiRequestsThisMonth, l.aiRequestsPerMonth],
        ["plugins", u.plugins, l.maxPlugins], ["requests per second", null, l.requestsPerSecond]]
        .map(([k, used, limit]) => `<tr><td>${esc(k)}</td><td class="num">${num(used ?? 0)}</td><td class="num">${num(limit)}</td></tr>`);
      const r = t.requests.lastMinute, all = t.requests.total, rl = t.rateLimit;
      const requests = [["requests", r.requests, all.requests], ["client errors (4xx, not 429)", r.clientErrors, all.clientErrors],
        ["server errors (5xx)", r.serverErrors, all.serverErrors], ["rate-limited (429)", r.rateLimited, all.rateLimited],
        ["over the monthly quota (429)", r.quotaExceeded, all.quotaExceeded]]
        .map(([k, m, a]) => `<tr><td>${esc(k)}</td><td class="num">${num(m)}</td><td class="num">${num(a)}</td></tr>`);
      view.innerHTML = `<h1>Tenant <span id="tenant-id">${esc(t.tenantId)}</span></h1>${partial(t)}
        <div class="cards">
          <div class="card">owner node<b id="tenant-owner">${esc(t.placement.owner ?? "unowned")}</b></div>
          <div class="card">shard<b>${num(t.placement.shard)}</b></div>
          <div class="card">live actors<b id="tenant-live">${num(t.liveActors.total)}</b></div>
          <div class="card">plan<b id="tenant-plan">${esc(t.usage?.plan ?? "-")}</b></div>
          <div class="card">requests/s<b id="tenant-rps">${r.requestsPerSecond.toFixed(2)}</b></div>
          <div class="card">errors/s<b id="tenant-eps">${r.errorsPerSecond.toFixed(2)}</b></div>
          <div class="card">rate bucket used<b id="tenant-burst-used">${rl && rl.burstUsed !== null ? Math.round(rl.burstUsed * 100) + "%" : "-"}</b></div>
        </div>
        <h2>Live actors</h2>${table(["kind", "live"], Object.entries(t.liveActors.byKind).map(([k, v]) => `<tr data-kind="${esc(k)}"><td>${esc(k)}</td><td class="num">${num(v)}</td></tr>`), "tenant-kinds")}
        <h2>Requests by its credentials <span class="muted">(every node; rate over the last ${r.windowSeconds} s${rl ? `; the plan allows ${num(rl.ratePerSecond)}/s, burst ${num(rl.burst)}, ${rl.tokensLeft === null ? "-" : num(rl.tokensLeft)} left at ${esc(rl.reportedBy ?? "the owner")}` : ""})</span></h2>
        ${table(["", "last minute", "since start"], requests, "tenant-requests")}
        <h2>Usage against the plan</h2>${table(["", "used", "limit"], usage, "tenant-usage")}
        <h2>Recent events <span class="muted">(the node's tail: from its last 50 events of the feed, then each new one)</span></h2>
        <table id="tenant-events"><thead><tr><th>position</th><th>time</th><th>type</th><th>aggregate</th></tr></thead><tbody>${recentRows()}</tbody></table>
        <p><a href="/console/actors/tenant/${encodeURIComponent(t.tenantId)}">The tenant's actor</a> ·
           <a href="/console/events?tenant=${encodeURIComponent(t.tenantId)}">its events</a></p>`;
      follow(t.tenantId);
    } catch (e) {
      if (e.message !== "signed out") view.innerHTML = `<h1>Tenant ${esc(id)}</h1><p class="bad" id="error">${esc(e.message)}</p>`;
    } finally {
      busy = false;
    }
  };
  render();
}

function actorView(kind, id, tenant) {
  let busy = false;
  render = async () => {
    if (busy) return;
    busy = true;
    try {
      const q = tenant ? `?tenantId=${encodeURIComponent(tenant)}` : "";
      const a = await api(`/v1/admin/actors/${encodeURIComponent(kind)}/${encodeURIComponent(id)}${q}`);
      view.innerHTML = `<h1>Actor ${esc(a.kind)}/<span id="actor-id">${esc(a.id)}</span></h1>
        <div class="cards">
          <div class="card">tenant<b><a href="/console/tenants/${encodeURIComponent(a.tenantId)}">${esc(a.tenantId.slice(0, 8))}…</a></b></div>
          <div class="card">owner node<b id="actor-owner">${esc(a.placement.owner ?? "unowned")}</b></div>
          <div class="card">live<b id="actor-live">${a.live ? "yes" : "no"}</b></div>
          <div class="card">commands routed<b>${num(a.commandsRouted)}</b></div>
          <div class="card">idle<b>${a.live ? num(a.idleMs) + " ms" : "-"}</b></div>
          <div class="card">mailbox<b id="actor-mailbox">${a.live ? num(a.mailboxDepth) : "-"}</b></div>
        </div>
        ${a.live ? actButton(`passivate ${a.kind}/${a.id}`, "Passivate", `/v1/admin/actors/${encodeURIComponent(a.kind)}/${encodeURIComponent(a.id)}/passivate${q}`) : ""}
        <h2>Last handled <span class="muted">(newest first, at most 8)</span></h2>
        <p id="actor-last-handled">${a.live && a.lastHandled.length ? a.lastHandled.map(esc).join(" · ") : '<span class="muted">none</span>'}</p>
        <h2>Lifecycle on its node <span class="muted">(this activation and the crashes still in the node's ring; passivations leave no record)</span></h2>
        ${table(["event", "at", "reason"], a.lifecycle.map((e) => `<tr data-event="${esc(e.event)}"><td>${esc(e.event)}</td><td>${esc(e.at)}</td><td>${esc(e.reason ?? "")}</td></tr>`), "actor-lifecycle")}
        <h2>State${a.stateTruncated ? " (truncated)" : ""}</h2>
        <pre id="actor-state">${a.live ? esc(typeof a.state === "string" ? a.state : JSON.stringify(a.state, null, 2)) : "not live: nothing to show (inspecting does not activate it)"}</pre>`;
    } catch (e) {
      if (e.message !== "signed out") view.innerHTML = `<h1>Actor ${esc(kind)}/${esc(id)}</h1><p class="bad" id="error">${esc(e.message)}</p>`;
    } finally {
      busy = false;
    }
  };
  render();
}

function eventsView(params) {
  let lastId = null, paused = false, dropped = 0, shown = 0;
  const rows = [];
  const maxRows = 200;
  view.innerHTML = `<h1>Events</h1>
    <form class="toolbar" id="tail-filter">
      <input id="tail-tenant" placeholder="tenant id" value="${esc(params.get("tenant") || "")}">
      <input id="tail-type" placeholder="type, e.g. user.created" value="${esc(params.get("type") || "")}">
      <button type="submit">Filter</button>
      <button type="button" id="tail-pause">Pause</button>
      <span>shown <b id="tail-count">0</b></span>
      <span>dropped <b id="tail-dropped">0</b></span>
      <span id="tail-state" class="muted"></span>
    </form>
    <table id="tail"><thead><tr><th>position</th><th>time</th><th>type</th><th>tenant</th><th>aggregate</th></tr></thead><tbody></tbody></table>`;
  const body = view.querySelector("#tail tbody");
  const open = () => {
    tail?.close();
    const q = new URLSearchParams({ events: "1" });
    if (params.get("tenant")) q.set("tenant", params.get("tenant"));
    if (params.get("type")) q.set("type", params.get("type"));
    if (lastId !== null) q.set("after", lastId); // resume where this tab stopped (a reconnect sends Last-Event-ID itself)
    tail = new EventSource(`/v1/admin/stream?${q}`, { withCredentials: true });
    tail.addEventListener("event", (e) => {
      lastId = e.lastEventId;
      const item = JSON.parse(e.data);
      const ev = item.event || {};
      rows.unshift(`<tr data-position="${item.position}"><td class="num">${item.position}</td><td>${esc(ev.occurredAt || "")}</td><td>${esc(ev.type || "")}</td>
        <td><a href="/console/tenants/${encodeURIComponent(ev.tenantId || "")}">${esc((ev.tenantId || "").slice(0, 8))}</a></td><td>${esc(ev.aggregateId || "")}</td></tr>`);
      if (rows.length > maxRows) rows.length = maxRows;
      shown++;
      body.innerHTML = rows.join("");
      document.getElementById("tail-count").textContent = shown;
    });
    tail.addEventListener("dropped", (e) => {
      dropped += JSON.parse(e.data).dropped;
      document.getElementById("tail-dropped").textContent = dropped;
    });
    tail.addEventListener("open", () => { document.getElementById("tail-state").textContent = "live"; });
    tail.addEventListener("error", () => { document.getElementById("tail-state").textContent = "reconnecting…"; });
  };
  document.getElementById("tail-pause").addEventListener("click", (e) => {
    paused = !paused;
    e.target.textContent = paused ? "Resume" : "Pause";
    if (paused) { tail?.close(); tail = null; document.getElementById("tail-state").textContent = "paused"; } else open();
  });
  document.getElementById("tail-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    const t = document.getElementById("tail-tenant").value.trim(), ty = document.getElementById("tail-type").value.trim();
    if (t) q.set("tenant", t);
    if (ty) q.set("type", ty);
    navigate(`/console/events${q.toString() ? "?" + q : ""}`);
  });
  render = () => {};
  open();
}

// -- routing -----------------------------------------------------------------------

function navigate(path) {
  history.pushState(null, "", path);
  route();
}

async function route() {
  const path = location.pathname.replace(/\/+$/, "") || "/console";
  const params = new URLSearchParams(location.search);
  try {
    const s = await fetch("/console/session", { credentials: "same-origin" });
    session = s.status === 200 ? await s.json() : {};
    if (!session.signedIn) { showSignIn(); return; }
  } catch {
    showSignIn("The node does not answer.");
    return;
  }
  signout.hidden = false;
  notice.hidden = true;
  armed = null;
  tail?.close(); tail = null;
  openStream();
  const parts = path.split("/").slice(2).map(decodeURIComponent); // after "/console"
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === (parts[0] || "cluster") && parts.length <= 1);
  if (parts.length === 0) clusterView();
  else if (parts[0] === "actors" && parts.length === 1) actorsView();
  else if (parts[0] === "actors" && parts.length === 3) actorView(parts[1], parts[2], params.get("tenant"));
  else if (parts[0] === "tenants" && parts.length === 2) tenantView(parts[1]);
  else if (parts[0] === "events" && parts.length === 1) eventsView(params);
  else if (parts[0] === "stores" && parts.length === 1) storesView();
  else if (parts[0] === "mailboxes" && parts.length === 1) mailboxesView();
  else { render = () => {}; view.innerHTML = `<h1>Not found</h1><p>No view at ${esc(path)}. <a href="/console">The cluster</a>.</p>`; }
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a");
  if (a && a.getAttribute("href")?.startsWith("/console") && !e.metaKey && !e.ctrlKey && e.button === 0) {
    e.preventDefault();
    navigate(a.getAttribute("href"));
  }
});
document.getElementById("lookup").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = document.getElementById("lookup-tenant").value.trim();
  if (v) navigate(`/console/tenants/${encodeURIComponent(v)}`);
});
window.addEventListener("popstate", route);
route();
