#!/usr/bin/env python3
"""End-to-end tests of the plugins' host API (docs/plugins.md, "Host API"):
colony.kv (per tenant and plugin, read-your-writes within a call, written
only when the hook ends well, the manifest's permission, the quota),
colony.emit (plugin.<name>.<type> events in the tenant's feed, handed to the
other plugins' on_event but not back to the emitter, no chains),
colony.users (the tenant's own users only), and colony.http.request (the
manifest's allow-list, reserved headers, timeouts, answer size, the SSRF
rules of webhooks, waits that hold no other tenant).

The node runs with --plugins.kv-quota 8KiB (colony_testkit.NodeCase).
Environment: see colony_testkit/env.py.
"""
import http.client
import http.server
import json
import shutil
import tempfile
import threading
import time
import unittest
import uuid

from colony_testkit import Node, NodeCase

COUNTER = """
return {
  http = function(ctx, req)
    if req.path == "/hit" then
      local n = (colony.kv.get("hits") or 0) + 1
      colony.kv.set("hits", n)
      colony.kv.set("by:" .. req.caller.credential, { n = n, last = req.body })
      -- read-your-writes: this call sees what it set before it is written
      return { body = { hits = colony.kv.get("hits"), mine = colony.kv.get("by:" .. req.caller.credential) } }
    elseif req.path == "/count" then
      return { body = { hits = colony.kv.get("hits") or 0 } }
    elseif req.path == "/list" then
      local page = colony.kv.list({ prefix = req.query.prefix or "", after = req.query.after, limit = 2 })
      return { body = page }
    elseif req.path == "/fail-after-set" then
      colony.kv.set("hits", 1000000)
      colony.kv.set("ghost", true)
      error("changed my mind")
    elseif req.path == "/big" then
      for i = 1, tonumber(req.query.n) do colony.kv.set("big:" .. i, string.rep("x", 1000)) end
      return { body = { ok = true } }
    elseif req.path == "/delete" then
      colony.kv.delete(req.query.key)
      return { body = { gone = colony.kv.get(req.query.key) == nil } }
    elseif req.path == "/misuse" then
      local ok, err = pcall(colony.kv.set, string.rep("k", 300), 1)
      local ok2, err2 = pcall(colony.kv.set, "k", nil)
      local ok3, err3 = pcall(colony.kv.get, 42)
      local ok4, err4 = pcall(colony.kv.list, { limit = 1000 })
      return { body = { err, err2, err3, err4, ok or ok2 or ok3 or ok4 } }
    end
    return { status = 404 }
  end,
}
"""

EMITTER = """
return {
  http = function(ctx, req)
    local id = colony.emit("order.placed", { order = req.query.order, total = 12.5, tags = { "a", "b" } })
    if req.query.fail then error("after the emit") end
    return { body = { id = id } }
  end,
  on_event = function(ctx, ev)
    if ev.pluginEmitted then error("its own event came back: " .. ev.type) end
  end,
}
"""

WATCHER = """
return {
  on_event = function(ctx, ev)
    if not ev.pluginEmitted then return end
    local ok, err = pcall(colony.emit, "echo", {})
    local seen = colony.kv.get("seen") or {}
    seen[#seen + 1] = { type = ev.type, data = ev.pluginEmitted.data, plugin = ev.pluginEmitted.plugin,
                        emitted = ok, err = err }
    colony.kv.set("seen", seen)
  end,
  http = function(ctx, req) return { body = { seen = colony.kv.get("seen") or {} } } end,
}
"""

USERS = """
return {
  http = function(ctx, req)
    if req.path == "/get" then
      local u = colony.users.get(req.query.id)
      return { body = { found = u ~= nil, email = u and u.email, tenant = u and u.tenantId } }
    end
    local page = colony.users.list({ limit = tonumber(req.query.limit), after = req.query.after })
    local emails = {}
    for _, u in ipairs(page.users) do emails[#emails + 1] = u.email end
    return { body = { emails = emails, next = page.next } }
  end,
}
"""


class PluginHostApi(NodeCase):
    def published(self, source, hooks, kv=False):
        body = {"name": "h-" + uuid.uuid4().hex[:8], "version": "1.0.0", "source": source, "hooks": hooks}
        if kv:
            body["permissions"] = {"kv": True}
        status, _, doc = self.node.json("POST", "/v1/plugins", body)
        self.assertEqual(status, 201, doc)
        return doc["name"]

    def enabled(self, source, hooks, kv=False, tid=None):
        name = self.published(source, hooks, kv)
        tid = tid or self.tenant(plan="starter")["id"]
        status, _, doc = self.node.json("PUT", f"/v1/tenants/{tid}/plugins/{name}", {"version": "1.0.0"})
        self.assertEqual(status, 201, doc)
        return tid, name

    def x(self, tid, name, path, method="GET", body=None):
        return self.node.json(method, f"/v1/tenants/{tid}/x/{name}{path}", body)

    def test_kv_is_per_tenant_and_plugin_and_written_when_the_hook_ends_well(self):
        tid, name = self.enabled(COUNTER, ["http"], kv=True)
        for i in range(1, 4):
            status, _, doc = self.x(tid, name, "/hit", "POST", {"i": i})
            self.assertEqual(status, 200, doc)
            self.assertEqual(doc["hits"], i)
            self.assertEqual(doc["mine"]["n"], i)
        self.assertEqual(self.x(tid, name, "/count")[2]["hits"], 3)
        # The same plugin in another tenant has its own keys.
        other = self.tenant(plan="starter")["id"]
        self.assertEqual(self.node.json("PUT", f"/v1/tenants/{other}/plugins/{name}", {"version": "1.0.0"})[0], 201)
        self.assertEqual(self.x(other, name, "/count")[2]["hits"], 0)
        self.assertEqual(self.x(other, name, "/hit", "POST", {})[2]["hits"], 1)
        self.assertEqual(self.x(tid, name, "/count")[2]["hits"], 3)
        # A hook that fails after setting keys leaves none of them.
        bad = self.assertProblem(self.x(tid, name, "/fail-after-set", "POST", {}), 503, "plugin-failed")
        self.assertIn("changed my mind", bad["detail"])
        self.assertEqual(self.x(tid, name, "/count")[2]["hits"], 3)
        # Listed by key in pages of two, with a prefix: by:<credential>, by:<viewer>, hits.
        viewer = self.node.json("POST", f"/v1/tenants/{tid}/api-keys", {"name": "v", "roles": ["viewer"]})[2]["key"]
        self.assertEqual(self.node.json("POST", f"/v1/tenants/{tid}/x/{name}/hit", {}, auth=viewer)[2]["hits"], 4)
        page = self.x(tid, name, "/list")[2]
        self.assertEqual(len(page["items"]), 2)
        self.assertTrue(all(e["key"].startswith("by:") for e in page["items"]), page)
        self.assertEqual(sorted(e["value"]["n"] for e in page["items"]), [3, 4])
        rest = self.x(tid, name, f"/list?after={page['next']}")[2]
        self.assertEqual([e["key"] for e in rest["items"]], ["hits"])
        self.assertNotIn("next", rest)
        self.assertEqual(rest["items"][0]["value"], 4)
        self.assertEqual(len(self.x(tid, name, "/list?prefix=hit")[2]["items"]), 1)
        self.assertEqual(len(self.x(tid, name, "/list?prefix=by:")[2]["items"]), 2)
        self.assertEqual(self.x(tid, name, "/delete?key=hits")[2]["gone"], True)
        self.assertEqual(self.x(tid, name, "/count")[2]["hits"], 0)

    def test_kv_misuse_permission_and_quota(self):
        tid, name = self.enabled(COUNTER, ["http"], kv=True)
        errs = self.x(tid, name, "/misuse", "POST", {})[2]
        self.assertIn("a key is 1 to 256 bytes", errs[0])
        self.assertIn("use colony.kv.delete", errs[1])
        self.assertIn("the key must be a string", errs[2])
        self.assertIn("limit must be an integer from 1 to 100", errs[3])
        self.assertFalse(errs[4])
        # Over the quota (8 KiB on this node): the call fails, and nothing of it is written.
        self.assertEqual(self.x(tid, name, "/big?n=3", "POST", {})[0], 200)
        over = self.assertProblem(self.x(tid, name, "/big?n=9", "POST", {}), 503, "plugin-failed")
        self.assertIn("kv quota", over["detail"])
        page = self.x(tid, name, "/list?prefix=big:")[2]
        self.assertEqual(len(page["items"]), 2)
        self.assertEqual(self.x(tid, name, f"/list?prefix=big:&after={page['next']}")[2]["items"][0]["key"], "big:3")
        # Without permissions.kv in its manifest a plugin has no store.
        tid2, name2 = self.enabled(COUNTER, ["http"], kv=False)
        denied = self.assertProblem(self.x(tid2, name2, "/count"), 503, "plugin-failed")
        self.assertIn("permissions.kv", denied["detail"])

    def test_emit_puts_plugin_events_in_the_feed_for_the_other_plugins(self):
        n = self.node
        tid, emitter = self.enabled(EMITTER, ["http", "on_event"])
        _, watcher = self.enabled(WATCHER, ["on_event", "http"], kv=True, tid=tid)
        status, _, doc = self.x(tid, emitter, "/go?order=o-1", "POST", {})
        self.assertEqual(status, 200, doc)
        self.assertProblem(self.x(tid, emitter, "/go?order=o-2&fail=1", "POST", {}), 503, "plugin-failed")
        events = [row["event"] for row in n.json("GET", f"/v1/tenants/{tid}/events")[2]["data"]]
        mine = [e for e in events if e["type"].startswith("plugin." + emitter)]
        self.assertEqual(len(mine), 1, events)  # the failed call emitted nothing
        ev = mine[0]
        self.assertEqual(ev["id"], doc["id"])
        self.assertEqual(ev["type"], f"plugin.{emitter}.order.placed")
        self.assertEqual((ev["aggregateKind"], ev["aggregateId"], ev["tenantId"]), ("plugin", emitter, tid))
        self.assertEqual(ev["pluginEmitted"]["data"], {"order": "o-1", "total": 12.5, "tags": ["a", "b"]})
        self.assertEqual(ev["pluginEmitted"]["hook"], "http")
        # The other plugin's on_event gets it (and may not emit from there: no chains).
        deadline = time.time() + 15
        seen = []
        while time.time() < deadline and not seen:
            seen = self.x(tid, watcher, "/seen")[2]["seen"]
            time.sleep(0.05)
        self.assertEqual(len(seen), 1, seen)
        self.assertEqual((seen[0]["type"], seen[0]["plugin"], seen[0]["data"]["order"]),
                         (f"plugin.{emitter}.order.placed", emitter, "o-1"))
        self.assertFalse(seen[0]["emitted"])
        self.assertIn("do not chain", seen[0]["err"])
        # The emitter's own on_event never gets its event back (it would fail: no dead letters).
        time.sleep(0.3)
        self.assertEqual(n.json("GET", f"/v1/tenants/{tid}/plugins/{emitter}/dead-letters")[2]["data"], [])
        # A bad type is an error naming the rule.
        bad = self.published('return { http = function() colony.emit("Bad Type", 1) end }', ["http"])
        self.assertEqual(n.json("PUT", f"/v1/tenants/{tid}/plugins/{bad}", {"version": "1.0.0"})[0], 201)
        self.assertIn("lower-case words", self.assertProblem(self.x(tid, bad, "/"), 503, "plugin-failed")["detail"])

    def test_users_are_the_tenants_own(self):
        n = self.node
        tid, name = self.enabled(USERS, ["http"])
        ids = []
        for i in range(3):
            status, _, u = n.json("POST", f"/v1/tenants/{tid}/users", {"email": f"u{i}@x.example", "name": "U"})
            self.assertEqual(status, 201, u)
            ids.append(u["id"])
        other = self.tenant()["id"]
        stranger = n.json("POST", f"/v1/tenants/{other}/users", {"email": "s@y.example", "name": "S"})[2]
        got = self.x(tid, name, f"/get?id={ids[1]}")[2]
        self.assertEqual((got["found"], got["email"], got["tenant"]), (True, "u1@x.example", tid))
        self.assertFalse(self.x(tid, name, f"/get?id={stranger['id']}")[2]["found"])  # another tenant's
        self.assertFalse(self.x(tid, name, "/get?id=" + str(uuid.uuid4()))[2]["found"])
        first = self.x(tid, name, "/list?limit=2")[2]
        self.assertEqual(first["emails"], ["u0@x.example", "u1@x.example"])
        rest = self.x(tid, name, f"/list?limit=2&after={first['next']}")[2]
        self.assertEqual(rest["emails"], ["u2@x.example"])
        self.assertNotIn("next", rest)


if __name__ == "__main__":
    unittest.main()


class Upstream:
    """A loopback HTTP server for colony.http.request: /echo answers what it got, /slow after 2 s,
    /big with 2 MiB, /chat records JSON posts."""

    def __init__(self):
        self.posts = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if self.path.startswith("/slow"):
                    time.sleep(2)
                if self.path.startswith("/chat"):
                    outer.posts.append((self.headers.get("Content-Type"), json.loads(body)))
                out = b"x" * (2 << 20) if self.path.startswith("/big") else json.dumps(
                    {"method": self.command, "path": self.path, "body": body.decode(),
                     "type": self.headers.get("Content-Type"), "agent": self.headers.get("User-Agent"),
                     "token": self.headers.get("X-Token")}).encode()
                self.send_response(201 if self.command == "POST" else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Upstream", "yes")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                try:
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):  # /big: the client stopped reading
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


FETCHER = """
return {
  http = function(ctx, req)
    local q = req.query
    local ok, res = pcall(colony.http.request, {
      method = q.method or "GET", url = ctx.config.base .. (q.path or "/echo"),
      headers = q.header and { [q.header] = "v" } or { ["X-Token"] = "t-1" },
      body = q.json and { hello = "world" } or q.text, timeout = tonumber(q.timeout) })
    if not ok then return { status = 502, body = { error = res } } end
    return { body = { status = res.status, upstream = res.headers["x-upstream"], got = colony.json.decode(res.body),
                      size = #res.body, length = res.headers["content-length"] } }
  end,
  on_event = function(ctx, ev)
    if ev.type ~= "user.created" then return end
    colony.http.request({ method = "POST", url = ctx.config.base .. "/chat",
                          body = { text = "new user " .. ev.userChanged.state.email } })
  end,
}
"""


class PluginHttp(NodeCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.up = Upstream()

    @classmethod
    def tearDownClass(cls):
        cls.up.close()
        super().tearDownClass()

    def fetcher(self, allow=("127.0.0.1",)):
        body = {"name": "f-" + uuid.uuid4().hex[:8], "version": "1.0.0", "source": FETCHER,
                "hooks": ["http", "on_event"], "permissions": {"http": list(allow)}}
        status, _, doc = self.node.json("POST", "/v1/plugins", body)
        self.assertEqual(status, 201, doc)
        tid = self.tenant(plan="starter")["id"]
        status, _, doc = self.node.json("PUT", f"/v1/tenants/{tid}/plugins/{body['name']}",
                                        {"version": "1.0.0", "config": {"base": self.up.base}})
        self.assertEqual(status, 201, doc)
        return tid, body["name"]

    def call(self, tid, name, query):
        return self.node.json("GET", f"/v1/tenants/{tid}/x/{name}/?{query}")

    def test_requests_reach_allowed_hosts_only(self):
        tid, name = self.fetcher()
        status, _, doc = self.call(tid, name, "path=/echo")
        self.assertEqual(status, 200, doc)
        self.assertEqual((doc["status"], doc["upstream"]), (200, "yes"))
        self.assertEqual((doc["got"]["method"], doc["got"]["token"], doc["got"]["agent"]),
                         ("GET", "t-1", "Colony-Plugins/1"))
        doc = self.call(tid, name, "method=post&json=1")[2]
        self.assertEqual((doc["status"], doc["got"]["method"], doc["got"]["type"]), (201, "POST", "application/json"))
        self.assertEqual(json.loads(doc["got"]["body"]), {"hello": "world"})
        doc = self.call(tid, name, "method=PUT&text=hi")[2]
        self.assertEqual((doc["got"]["body"], doc["got"]["type"]), ("hi", "text/plain; charset=utf-8"))
        # Refused before anything is sent: a host not in the manifest, a header the client sets, a bad method.
        other, oname = self.fetcher(allow=("hooks.example.com",))
        status, _, doc = self.call(other, oname, "")
        self.assertEqual(status, 502, doc)
        self.assertIn("'127.0.0.1' is not in this plugin's manifest (permissions.http)", doc["error"])
        self.assertIn("the client's to set", self.call(tid, name, "header=Host")[2]["error"])
        self.assertIn("not a header name", self.call(tid, name, "header=a%20b")[2]["error"])
        self.assertIn("method is GET", self.call(tid, name, "method=TRACE")[2]["error"])
        # A timeout and an answer too large are errors, with the host named; the node stays healthy.
        started = time.time()
        self.assertIn("127.0.0.1: timeout", self.call(tid, name, "path=/slow&timeout=200")[2]["error"])
        self.assertLess(time.time() - started, 1.8)
        big = self.call(tid, name, "path=/big")
        self.assertIn("too large", big[2].get("error", ""), big)
        self.assertEqual(self.node.request("GET", "/readyz")[0], 200)

    def test_a_waiting_request_holds_neither_the_node_nor_other_tenants(self):
        tid, name = self.fetcher()
        other, oname = self.fetcher()
        results = {}

        def slow_call():  # on a connection of its own (the test's is not shared between threads)
            conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=30)
            conn.request("GET", f"/v1/tenants/{tid}/x/{name}/?path=/slow",
                         headers={"Authorization": "Bearer " + self.node.admin_key})
            resp = conn.getresponse()
            results["slow"] = (resp.status, json.loads(resp.read()))
            conn.close()
        slow = threading.Thread(target=slow_call)
        slow.start()
        time.sleep(0.2)
        started = time.time()
        status, _, doc = self.call(other, oname, "path=/echo")
        self.assertEqual((status, doc["status"]), (200, 200))
        self.assertLess(time.time() - started, 1.0)  # not behind the slow one
        slow.join()
        self.assertEqual(results["slow"][0], 200, results)
        self.assertEqual(results["slow"][1]["status"], 200)  # waiting is not the plugin's time (50 ms)

    def test_on_event_posts_to_a_chat_webhook(self):
        tid, name = self.fetcher()
        self.assertEqual(self.node.json("POST", f"/v1/tenants/{tid}/users", {"email": "n@x.example", "name": "N"})[0],
                         201)
        deadline = time.time() + 15
        while time.time() < deadline and not any("n@x.example" in p[1]["text"] for p in self.up.posts):
            time.sleep(0.05)
        posts = [p for p in self.up.posts if "n@x.example" in p[1]["text"]]
        self.assertEqual(len(posts), 1, self.up.posts)
        self.assertEqual(posts[0], ("application/json", {"text": "new user n@x.example"}))


class PluginHttpSsrf(unittest.TestCase):
    """Without --webhooks.allow-private-targets, loopback is refused as for webhooks, allow-list or not."""

    def test_private_addresses_are_refused(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-ssrf-")
        up = Upstream()
        node = Node(d, ["--webhooks.allow-private-targets", "false"])
        try:
            body = {"name": "s-" + uuid.uuid4().hex[:8], "version": "1.0.0", "source": FETCHER, "hooks": ["http"],
                    "permissions": {"http": ["127.0.0.1", "localhost"]}}
            self.assertEqual(node.json("POST", "/v1/plugins", body)[0], 201)
            slug = "t-" + uuid.uuid4().hex[:12]
            tid = node.json("POST", "/v1/tenants", {"slug": slug, "name": slug, "plan": "starter"})[2]["id"]
            for base in (up.base, up.base.replace("127.0.0.1", "localhost")):
                status, _, doc = node.json("PUT", f"/v1/tenants/{tid}/plugins/{body['name']}",
                                           {"version": "1.0.0", "config": {"base": base}})
                self.assertIn(status, (200, 201), doc)
                status, _, doc = node.json("GET", f"/v1/tenants/{tid}/x/{body['name']}/?path=/echo")
                self.assertEqual(status, 502, doc)
                self.assertIn(": refused", doc["error"])
        finally:
            code, _ = node.stop()
            up.close()
            shutil.rmtree(d, ignore_errors=True)
        self.assertEqual(code, 0)
