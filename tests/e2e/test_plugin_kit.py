#!/usr/bin/env python3
"""The plugin kit (docs/plugins.md, "Writing, testing and publishing a
plugin"): `colonyctl plugin new` makes a directory that passes `plugin
test` as it is; `plugin test` runs fixtures in the node's sandbox with the
node's limits and options, and says what differs; `plugin publish` posts
the directory to a node. Then the three plugins of examples/plugins run on
a live node: their fixtures pass, and they do on the node what the
fixtures say.

Environment: colony_testkit/env.py; COLONYCTL names the CLI (default next to
colonyd).
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from colony_testkit import COLONYD, NodeCase, Receiver, wait_until

COLONYCTL = os.environ.get("COLONYCTL", os.path.join(os.path.dirname(COLONYD), "colonyctl"))
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "plugins")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f)


def ctl(*args, env=None, cwd=None):
    e = dict(os.environ, COLONYD=COLONYD)
    e.update(env or {})
    return subprocess.run([COLONYCTL, *args], capture_output=True, text=True, env=e, cwd=cwd, timeout=120)


class Kit(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="colony-kit-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def made(self, name="greeter"):
        p = ctl("plugin", "new", name, "--dir", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        return os.path.join(self.dir, name)

    def write(self, path, text):
        with open(path, "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))

    def test_new_makes_a_plugin_that_passes_its_tests(self):
        d = self.made()
        self.assertEqual(sorted(os.listdir(d)), ["plugin.json", "plugin.lua", "tests"])
        p = ctl("plugin", "test", d)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("3 passed, 0 failed", p.stdout)
        self.assertIn("10000000 instructions, 50 ms", p.stdout)  # the node's defaults
        # A bad name, or a directory that exists, is refused.
        self.assertEqual(ctl("plugin", "new", "Bad_Name", "--dir", self.dir).returncode, 2)
        again = ctl("plugin", "new", "greeter", "--dir", self.dir)
        self.assertEqual(again.returncode, 2)
        self.assertIn("exists", again.stderr)

    def test_a_failing_expectation_is_named(self):
        d = self.made()
        self.write(os.path.join(d, "tests", "wrong.json"), [
            {"name": "expects the wrong reason", "hook": "before_user_create", "config": {"blockedNames": ["root"]},
             "args": [{"email": "r@example.com", "name": "root"}], "expect": {"reject": "something else"}},
            {"name": "expects a rejection of a good user", "hook": "before_user_create",
             "args": [{"email": "a@example.com", "name": "Ann"}], "expect": {"reject": "no"}},
            {"name": "a config the schema refuses", "hook": "before_user_create", "config": {"blockedNames": "root"},
             "args": [{"email": "a@example.com", "name": "Ann"}], "expect": {"accept": True}},
            {"name": "a hook the manifest does not declare", "hook": "on_event", "args": [{}]},
            {"name": "a member the kit does not know", "hook": "http", "args": [{}], "expext": {}},
            {"name": "an http status", "hook": "http",
             "args": [{"method": "GET", "path": "x", "query": {}, "headers": {}, "body": "",
                       "caller": {"credential": "k", "roles": [], "userId": ""}}], "expect": {"status": 201}},
        ])
        p = ctl("plugin", "test", d)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("3 passed, 6 failed", p.stdout)
        out = p.stdout
        self.assertIn('rejected with "the name root is not allowed", expected "something else"', out)
        self.assertIn("the user was accepted, expected a rejection", out)
        self.assertIn("the config would be refused when enabled: config.blockedNames", out)
        self.assertIn("plugin.json does not declare the hook 'on_event'", out)
        self.assertIn('unknown member "expext"', out)
        self.assertIn("status 200, expected 201", out)

    def test_a_plugin_that_would_not_publish(self):
        d = self.made()
        self.write(os.path.join(d, "plugin.lua"), "return {\n  before_user_create = function(ctx, user)\n    retrun user\nend }")
        p = ctl("plugin", "test", d)
        self.assertEqual(p.returncode, 1)
        self.assertIn("would not publish: source:", p.stdout)
        self.assertIn(":3:", p.stdout)  # the line
        self.write(os.path.join(d, "plugin.lua"), "return { http = function() return {} end }")
        p = ctl("plugin", "test", d)
        self.assertIn("hooks[0]: the source's table has no function 'before_user_create'", p.stdout)
        manifest = read_json(os.path.join(d, "plugin.json"))
        manifest["version"] = "1.0"
        self.write(os.path.join(d, "plugin.json"), manifest)
        p = ctl("plugin", "test", d)
        self.assertIn("version", p.stdout)
        self.assertEqual(ctl("plugin", "test", self.dir).returncode, 1)  # not a plugin directory

    def test_the_node_limits_hold_and_come_from_its_options(self):
        d = self.made()
        self.write(os.path.join(d, "plugin.json"), {"name": "greeter", "version": "0.1.0", "hooks": ["http"]})
        self.write(os.path.join(d, "plugin.lua"), """
return { http = function(ctx, req)
  if req.path == "loop" then while true do end end
  if req.path == "pattern" then return {body = tostring(string.find(string.rep("a", 1e5), ".-.-.-.-x"))} end
  if req.path == "memory" then local t = {} for i = 1, 1e8 do t[i] = i end end
  return {body = "ok"}
end }""")

        def case(path, fault):
            return {"name": path, "hook": "http", "expect": {"fault": fault},
                    "args": [{"method": "GET", "path": path, "query": {}, "headers": {}, "body": "",
                              "caller": {"credential": "k", "roles": [], "userId": ""}}]}
        shutil.rmtree(os.path.join(d, "tests"))
        os.mkdir(os.path.join(d, "tests"))
        self.write(os.path.join(d, "tests", "limits.json"),
                   [case("loop", "instruction-limit"), case("pattern", "instruction-limit"),
                    case("memory", "memory-limit")])
        started = time.time()
        p = ctl("plugin", "test", d, "--set", "plugins.instructions=100000", "--set", "plugins.memory=1MiB",
                "--set", "plugins.time=5s")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("100000 instructions, 5000 ms, 1 MiB of memory", p.stdout)
        self.assertLess(time.time() - started, 20)
        # A node option out of range is refused by the node's own parser.
        p = ctl("plugin", "test", d, "--set", "plugins.instructions=5")
        self.assertEqual(p.returncode, 2)
        self.assertIn("plugins.instructions", p.stderr)
        self.assertEqual(ctl("plugin", "test", d, "--set", "no-equals").returncode, 2)

    def test_host_calls_run_against_the_fixture(self):
        d = self.made()
        self.write(os.path.join(d, "plugin.json"), {"name": "greeter", "version": "0.1.0", "hooks": ["http"],
                                                    "permissions": {"kv": True, "http": ["api.example.com"]}})
        self.write(os.path.join(d, "plugin.lua"), """
return { http = function(ctx, req)
  local u = colony.users.get("u2")
  local page = colony.users.list({role = "admin"})
  colony.kv.set("seen", (colony.kv.get("seen") or 0) + 1)
  colony.emit("greeted", {user = u.email})
  local res = colony.http.request{method = "POST", url = "https://api.example.com/v1/x", body = {a = 1}}
  return {body = {email = u.email, admins = #page.users, upstream = res.status, quota_ok = pcall(colony.kv.set, "big", string.rep("x", 60000))}}
end }""")
        self.write(os.path.join(d, "tests", "hooks.json"), {
            "name": "host calls", "hook": "http",
            "args": [{"method": "GET", "path": "", "query": {}, "headers": {}, "body": "",
                      "caller": {"credential": "k", "roles": [], "userId": ""}}],
            "kv": {"seen": 4},
            "users": [{"id": "u1", "email": "a@example.com", "roles": ["admin"]},
                      {"id": "u2", "email": "b@example.com", "roles": ["member"]},
                      {"id": "u3", "email": "c@example.com", "roles": ["admin"]}],
            "http": [{"method": "POST", "url": "https://api.example.com/v1/x", "status": 202, "body": "{}"}],
            "expect": {"status": 200, "body": {"email": "b@example.com", "admins": 2, "upstream": 202, "quota_ok": True},
                       "emitted": [{"type": "greeted", "data": {"user": "b@example.com"}}],
                       "requests": [{"method": "POST", "url": "https://api.example.com/v1/x", "body": {"a": 1}}]}})
        p = ctl("plugin", "test", d, "--set", "plugins.kv-quota=1MiB")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # The quota is the node's: at 8 KiB the 60 KB value is refused (the plugin's pcall sees it).
        p = ctl("plugin", "test", d, "--set", "plugins.kv-quota=8KiB")
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn('"quota_ok":false', p.stdout)

    def test_examples_pass_their_fixtures(self):
        dirs = [os.path.join(EXAMPLES, n) for n in ("email-domains", "chat-notifier", "usage-counter")]
        p = ctl("plugin", "test", *dirs)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.count(" 0 failed"), 3, p.stdout)
        self.assertNotIn("FAIL", p.stdout)


class Examples(NodeCase):
    """The example plugins published with colonyctl and enabled on a live node."""

    def publish(self, src, edit=None):
        d = tempfile.mkdtemp(prefix="colony-example-")
        self.addCleanup(shutil.rmtree, d, True)
        dst = os.path.join(d, os.path.basename(src))
        shutil.copytree(src, dst)
        manifest = read_json(os.path.join(dst, "plugin.json"))
        if edit:
            edit(manifest)
        write_json(os.path.join(dst, "plugin.json"), manifest)
        url = f"http://127.0.0.1:{self.node.port}"
        p = ctl("--url", url, "--token", self.node.admin_key, "plugin", "publish", dst)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"published {manifest['name']}@{manifest['version']}", p.stdout)
        return manifest

    def enable(self, tid, manifest, config=None):
        body = {"version": manifest["version"], **({"config": config} if config is not None else {})}
        status, _, doc = self.node.json("PUT", f"/v1/tenants/{tid}/plugins/{manifest['name']}", body)
        self.assertEqual(status, 201, doc)

    def test_examples_on_a_node(self):
        receiver = Receiver("ok")
        self.addCleanup(receiver.close)
        suffix = "-" + str(int(time.time() * 1000) % 100000)

        def renamed(m):
            m["name"] += suffix
        domains = self.publish(os.path.join(EXAMPLES, "email-domains"), renamed)
        # The chat is a loopback receiver here: its host goes into the manifest.
        chat = self.publish(os.path.join(EXAMPLES, "chat-notifier"),
                            lambda m: (renamed(m), m["permissions"].update(http=["127.0.0.1"])))
        counter = self.publish(os.path.join(EXAMPLES, "usage-counter"), renamed)
        # Publishing the same version again is refused, and colonyctl says so.
        self.publish(os.path.join(EXAMPLES, "usage-counter"))  # the example's own name, once
        again = ctl("--url", f"http://127.0.0.1:{self.node.port}", "--token", self.node.admin_key, "plugin",
                    "publish", os.path.join(EXAMPLES, "usage-counter"))
        self.assertEqual(again.returncode, 1, again.stdout)
        self.assertIn("409", again.stderr)

        tid = self.tenant(plan="pro")["id"]
        self.enable(tid, domains, {"domains": ["example.com"]})
        self.enable(tid, chat, {"webhookUrl": receiver.url})
        self.enable(tid, counter)

        bad = self.assertProblem(self.node.json("POST", f"/v1/tenants/{tid}/users",
                                                {"email": "eve@elsewhere.net", "name": "Eve"}), 422, "plugin-rejected")
        self.assertIn("elsewhere.net are not allowed", bad["detail"])
        status, _, ann = self.node.json("POST", f"/v1/tenants/{tid}/users", {"email": "Ann@Example.com", "name": "Ann"})
        self.assertEqual(status, 201, ann)
        self.assertEqual(ann["email"], "ann@example.com")

        def posted():
            if receiver.received:
                return True
            _, _, b = self.node.json("GET", f"/v1/tenants/{tid}/plugins/{chat['name']}")
            _, _, dead = self.node.json("GET", f"/v1/tenants/{tid}/plugins/{chat['name']}/dead-letters")
            self.assertFalse(dead.get("items"), (b, dead, self.node.logs_since_start()[-3000:]))
            return False
        wait_until(posted, timeout=20, what="the chat got the new user")
        post, headers, _ = receiver.received[0]
        self.assertEqual(post, {"text": f"New user in {tid}: Ann <ann@example.com>"})
        self.assertEqual(headers.get("Content-Type"), "application/json")

        def counts():
            status, _, doc = self.node.json("GET", f"/v1/tenants/{tid}/x/{counter['name']}/counts")
            self.assertEqual(status, 200, doc)
            return doc if doc["counts"].get("user.created") == 1 else None
        doc = wait_until(counts, timeout=20, what="the counter counted user.created")
        self.assertGreaterEqual(doc["total"], 1)
        status, _, one = self.node.json("GET", f"/v1/tenants/{tid}/x/{counter['name']}/counts/user.created")
        self.assertEqual((status, one), (200, {"type": "user.created", "count": 1}))
        status, _, reset = self.node.json("DELETE", f"/v1/tenants/{tid}/x/{counter['name']}/counts")
        self.assertEqual(status, 200, reset)
        self.assertGreaterEqual(reset["reset"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
